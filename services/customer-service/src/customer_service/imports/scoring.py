"""Duplicate scoring of an import chunk's new rows, as a pure function of what the chunk read, so that it
can run in a worker process while the event loop writes the chunk.

`score_rows` is the scoring loop itself (the same in the service process and in a worker). A worker
process keeps, per import job, the sides (what matching compares) it was sent or scored, so a chunk
sends it only its new rows and the candidates the job decrypted since the last chunk; `score_chunk`
is what runs there, and answers `Missing` when a candidate's side is not held (a worker started again,
or its cache emptied): the caller sends those and asks again.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from customer_service.duplicates import service as duplicates
from customer_service.duplicates.linkage import Model, score_at_least
from customer_service.duplicates.linkage import evidence as linkage_evidence
from customer_service.duplicates.matching import Side

# A new row as scoring sees it: its id, side and blocking keys.
ScoredRow = tuple[str, Side, Collection[str]]
# Scored profiles kept per job between chunks (clear values of the job's rows and their candidates), by
# the importer in the service process and by the scoring worker process alike.
MAX_SIDES = 300_000
# Jobs whose sides a worker keeps (the oldest is dropped first).
MAX_JOBS = 4


@dataclass
class Scored:
    """Pairs at or above the threshold as (a, b, score, evidence) with a < b, the new rows and the
    existing customers that now have an open duplicate, and the auto-merges (survivor, merged, score)."""

    pairs: list[tuple[str, str, float, dict[str, float]]] = field(default_factory=list)
    open_new: set[str] = field(default_factory=set)
    open_existing: set[str] = field(default_factory=set)
    merges: list[tuple[str, str, float]] = field(default_factory=list)


@dataclass
class Missing:
    """The (id, version) of candidates whose side the worker does not hold."""

    keys: list[tuple[str, int]]


def score_rows(
    rows: Sequence[ScoredRow],
    holders: Mapping[str, list[str]],
    versions: Mapping[str, int],
    sides: Mapping[tuple[str, int], Side],
    model: Model,
    threshold: float,
    auto_merge_threshold: float | None,
) -> Scored:
    """Score each row, in order, against the holders of its keys in the database (`holders`, most recent
    first; `versions`: each holder's version, its side in `sides`) and the earlier rows of the chunk
    sharing a key. `auto_merge_threshold` None: no auto-merge."""
    out = Scored()
    side_of_new = {row_id: side for row_id, side, _ in rows}
    chunk_blocks: dict[str, list[str]] = {}
    merged_away: set[str] = set()
    broad_keys = {key for _, _, keys in rows for key in keys if duplicates.is_broad(key)}
    for row_id, side, keys in rows:
        strong: set[str] = set()
        broad: set[str] = set()
        # The chunk's own holders of a key, in id order: only the most recent `limit` of them that
        # are not excluded can be picked (`pick_candidates` keeps the most recent of the union, and
        # a member of the union's top `limit` is in its own key's top `limit + excluded`), so a
        # common key (a surname in a big town) is not read whole for every row that shares it.
        extra = len(merged_away) + 1
        for key in keys:
            members = holders.get(key)
            block = chunk_blocks.get(key)
            if key in broad_keys:
                if members:
                    broad.update(members)
                if block:
                    broad.update(block[-(duplicates.MAX_PHONETIC_CANDIDATES + extra) :])
            else:
                if members:
                    strong.update(members)
                if block:
                    strong.update(block[-(duplicates.MAX_BLOCK_CANDIDATES + extra) :])
        other_ids = duplicates.pick_candidates(strong, broad, exclude=merged_away | {row_id})
        best: tuple[float, str] | None = None
        for other_id in other_ids:
            other_new = side_of_new.get(other_id)
            theirs = other_new if other_new is not None else sides.get((other_id, versions[other_id]))
            if theirs is None:
                continue
            scored = score_at_least(side, theirs, threshold, model)
            if scored is None or scored[0] < threshold:
                continue
            total, weights = scored
            a, b = (row_id, other_id) if row_id < other_id else (other_id, row_id)
            out.pairs.append((a, b, total, linkage_evidence(weights)))
            out.open_new.add(row_id)
            if other_new is not None:
                out.open_new.add(other_id)
            else:
                out.open_existing.add(other_id)
            if best is None or total > best[0]:
                best = (total, other_id)
        if best is not None and auto_merge_threshold is not None and best[0] >= auto_merge_threshold:
            survivor, merged = (best[1], row_id) if best[1] < row_id else (row_id, best[1])
            out.merges.append((survivor, merged, best[0]))
            merged_away.add(merged)
        for key in keys:
            block = chunk_blocks.get(key)
            if block is None:
                chunk_blocks[key] = [row_id]
            elif row_id > block[-1]:
                block.append(row_id)
            else:  # ids made in one millisecond are not in order (uuid7)
                bisect.insort(block, row_id)
    return out


# --- in a worker process -------------------------------------------------------------------------


@dataclass
class _Job:
    """What a worker process holds of one job: its model (sent once) and the sides it was sent or
    scored."""

    model: Model | None = None
    sides: dict[tuple[str, int], Side] = field(default_factory=dict)


_jobs: dict[str, _Job] = {}


def score_chunk(
    job: str,
    model: Model | None,
    sides: list[tuple[tuple[str, int], Side]],
    rows: list[ScoredRow],
    holders: dict[str, list[str]],
    versions: dict[str, int],
    threshold: float,
    auto_merge_threshold: float | None,
) -> Scored | Missing:
    """`score_rows` in a worker process, with the sides held for `job` plus `sides` (`model`: the job's
    model when it changed, else None). Keeps the chunk's rows' sides for the next chunks."""
    held = _jobs.get(job)
    if held is None:
        while len(_jobs) >= MAX_JOBS:
            del _jobs[next(iter(_jobs))]
        held = _jobs[job] = _Job()
    if model is not None:
        held.model = model
    held.sides.update(sides)
    missing = [key for cid, version in versions.items() if (key := (cid, version)) not in held.sides]
    if held.model is None or missing:
        return Missing(missing)
    scored = score_rows(rows, holders, versions, held.sides, held.model, threshold, auto_merge_threshold)
    if len(held.sides) > MAX_SIDES:
        held.sides.clear()
    for row_id, side, _ in rows:
        held.sides[(row_id, 1)] = side
    return scored


def forget_job(job: str) -> None:
    _jobs.pop(job, None)
