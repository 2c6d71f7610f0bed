"""Bulk import of customers from CSV or NDJSON.

Every row is validated and normalised before anything is written (spaces, case, date formats,
postcodes with spaces). What a bad row does depends on the job's `on_error` mode: `refuse` (default)
imports nothing and reports every bad row (row, field, reason); `skip_row` imports the other rows;
`drop_field` keeps the row without its invalid fields. Every row's result (the customer it created,
matched or was merged into; or why it was skipped or refused, with the row as sent) is kept in
`import_rows`. A valid file is then imported in chunks
(`CUSTOMER_IMPORT_CHUNK_ROWS`), each chunk committed in one transaction together with the job's
progress, so other writers are never blocked for the whole file. If the process or the database fails
in the middle, the rows of the committed chunks stay imported and the job says exactly which
(`processed_rows`, and the error names the first row not imported); re-uploading the file imports the
rest, since rows already imported match their customer by email or external id."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from sqlalchemy import and_, case, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import uuid7
from customer_service.context import CustomerContext
from customer_service.customers import service as customers
from customer_service.duplicates import service as duplicates
from customer_service.imports import workers
from customer_service.imports.bulk import BulkImporter, ChunkResult, insert_rows
from customer_service.imports.cleansing import (
    CheckedRow,
    ParsedRow,
    check_packed,
    check_repeated,
    check_rows,
    pack_rows,
    unpack_checked,
)
from customer_service.imports.models import ImportJob, ImportRow
from servicekit.db import Database, WalCheckpointer
from servicekit.errors import Conflict, ServiceError
from servicekit.files import CsvReader, FileFormatError, FileLimits, read_ndjson
from servicekit.gcpause import collect_young, cyclic_gc_paused
from servicekit.transitions import compare_and_set

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "birthday",
    "locale",
    "country",
    "tags",
    "line1",
    "line2",
    "city",
    "postcode",
    "region",
    "address_country",
    "external_source",
    "external_id",
)
MAX_ERRORS = 1000
SQLITE_CHUNK_CACHE_KIB = 64 * 1024
# A chunk that hits a concurrent writer's identifier (or a busy database) is retried this often.
CHUNK_ATTEMPTS = 3
# Auto-merges a job carries out per transaction (each a full merge: about 30 ms of SQLite's write lock).
MERGES_PER_TRANSACTION = 20
# Rows validated per worker-thread call (a heartbeat is written between blocks).
VALIDATION_BLOCK_ROWS = 5_000
# PostgreSQL: refresh the planner's statistics of the tables an import grows when it has created this
# many customers, then again each time that number doubles.
ANALYZE_FIRST_AT = 2_000
ANALYZED_TABLES = ("customers", "customer_identifiers", "customer_blocking_keys")

# Rows committed so far by the running jobs of this process (also written to the job row per chunk).
PROGRESS: dict[str, int] = {}


FileError = FileFormatError
"""A file that cannot be read as CSV/NDJSON at all (names the line); nothing of it is imported."""

IMPORT_FILE_LIMITS = FileLimits(max_rows=1_000_000, max_columns=len(CSV_COLUMNS), max_cell_chars=64 * 1024)


def parse(content: IO[bytes] | bytes, fmt: str) -> list[ParsedRow]:
    """Rows of the file with their 1-based data row number; FileError (with the line) if the file is
    structurally broken: bad UTF-8 or NUL bytes, an unterminated quote, a wrong cell count, a cell, line
    or nesting depth over the limits, an NDJSON line that is not a JSON object."""
    source = io.BytesIO(content) if isinstance(content, bytes) else content
    with cyclic_gc_paused():  # a big file's rows all live until the job ends (see cyclic_gc_paused)
        if fmt == "ndjson":
            return [
                ParsedRow(line.number, line.value, raw=line.value, repeated=line.repeated, line=line.line)
                for line in read_ndjson(source, IMPORT_FILE_LIMITS)
            ]
        return _parse_csv(source)


def _parse_csv(source: IO[bytes]) -> list[ParsedRow]:
    reader = CsvReader(source, IMPORT_FILE_LIMITS)
    unknown = [name for name in reader.header if name not in CSV_COLUMNS]
    if unknown:
        raise FileError(f"Unknown CSV column(s): {', '.join(unknown)}. Known: {', '.join(CSV_COLUMNS)}.")
    rows = []
    for row in reader:
        cells = {k: v.strip() for k, v in row.cells.items()}
        rows.append(ParsedRow(row.number, _csv_to_model(cells), raw=cells))
    return rows


def _csv_to_model(cells: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: cells[name]
        for name in ("first_name", "last_name", "birthday", "locale", "country")
        if cells.get(name)
    }
    if cells.get("email"):
        data["emails"] = [{"address": cells["email"]}]
    if cells.get("phone"):
        data["phones"] = [{"number": cells["phone"]}]
    if cells.get("tags"):
        data["tags"] = [t for t in cells["tags"].split(";") if t.strip()]
    if any(cells.get(k) for k in ("line1", "city", "postcode", "address_country")):
        data["addresses"] = [
            {
                "kind": "shipping",
                "line1": cells.get("line1", ""),
                "line2": cells.get("line2") or None,
                "city": cells.get("city", ""),
                "postcode": cells.get("postcode") or None,
                "region": cells.get("region") or None,
                "country": cells.get("address_country") or cells.get("country", ""),
            }
        ]
    if cells.get("external_id") or cells.get("external_source"):
        data["external_ids"] = [
            {"source": cells.get("external_source", ""), "id": cells.get("external_id", "")}
        ]
    return data


async def create_job(
    database: Database, *, fmt: str, actor: str, total_rows: int, on_error: str = "refuse"
) -> ImportJob:
    async with database.session() as session:
        stamp = customers.now()
        job = ImportJob(
            id=str(uuid7()),
            format=fmt,
            actor=actor,
            total_rows=total_rows,
            on_error=on_error,
            created_at=stamp,
            heartbeat_at=stamp,
        )
        session.add(job)
    return job


async def run(
    database: Database,
    context: CustomerContext,
    *,
    job_id: str,
    rows: list[ParsedRow],
    fmt: str,
    on_error: str = "refuse",
) -> None:
    """Validate all rows (normalising what can be). In `refuse` mode a bad row fails the job with the
    report and nothing is written; in `skip_row` mode bad rows are reported and left out; in
    `drop_field` mode a row keeps its valid fields. The rows kept are imported in chunks of
    `context.import_chunk_rows`, each chunk committed with the job's progress and its rows' results.
    Runs with the cyclic garbage collector paused (`cyclic_gc_paused`)."""
    with cyclic_gc_paused():
        await _run(database, context, job_id=job_id, rows=rows, fmt=fmt, on_error=on_error)


async def _run(
    database: Database,
    context: CustomerContext,
    *,
    job_id: str,
    rows: list[ParsedRow],
    fmt: str,
    on_error: str,
) -> None:
    PROGRESS[job_id] = 0
    committed = created = matched = 0
    kept: list[CheckedRow] = []
    try:
        await _update(database, job_id, status="running")
        checked = await _validate_all(database, context, job_id, rows, fmt, on_error)
        checked = [
            check_repeated(context.default_region, row, fmt, on_error) if row.repeated else result
            for row, result in zip(rows, checked, strict=True)
        ]
        errors = [e for row in checked for e in row.errors][:MAX_ERRORS]
        rejected = [row for row in checked if row.profile is None]
        if rejected and on_error == "refuse":
            await _write_rows(database, job_id, [_row_result(row, "refused") for row in rejected])
            await _update(database, job_id, status="failed", errors=errors, finished=True)
            return
        await _write_rows(database, job_id, [_row_result(row, "skipped") for row in rejected])
        await _update(database, job_id, status="running", errors=errors, skipped=len(rejected))
        kept = [row for row in checked if row.profile is not None]
        size = max(1, context.import_chunk_rows)
        # A job of more than one chunk scores its duplicates in the scoring worker process.
        scoring_pool = (
            workers.SCORING.pool(1) if context.import_scoring_process and len(kept) > size else None
        )
        importer = BulkImporter(context, scoring_pool=scoring_pool)
        next_analyze = ANALYZE_FIRST_AT
        checkpoints = _Checkpoints(database)
        merging = _Merges(database, importer, job_id)
        using = contextlib.ExitStack()
        if scoring_pool is not None:
            using.enter_context(workers.SCORING.in_use())
        try:
            for start in range(0, len(kept), size):
                chunk = kept[start : start + size]
                try:
                    result = await _import_chunk(
                        database,
                        importer,
                        job_id,
                        chunk,
                        # The next chunk's per-profile work, done while this one is written.
                        ahead=[
                            row.profile
                            for row in kept[start + size : start + 2 * size]
                            if row.profile is not None
                        ],
                        done=start + len(rejected),
                        checkpoints_elsewhere=checkpoints.enabled,
                    )
                finally:
                    await importer.ahead_done()
                merging.record(chunk, result)
                await merging.carry_out(result.merges)
                await checkpoints.after_chunk()
                collect_young()
                committed += len(chunk)
                created += result.created
                matched += result.matched
                PROGRESS[job_id] = committed + len(rejected)
                if created >= next_analyze and not database.is_sqlite:
                    await _refresh_statistics(database)
                    next_analyze *= 2
        finally:
            await checkpoints.close()
            await importer.close()
            using.close()
        await _update(
            database,
            job_id,
            status="succeeded",
            processed=committed + len(rejected),
            created=created,
            matched=matched,
            finished=True,
        )
    except Exception as exc:
        log.exception("import job %s failed after %d committed rows", job_id, committed)
        if isinstance(exc, ServiceError) and exc.detail:
            reason = exc.detail
        elif isinstance(exc, JobAbandoned):
            reason = str(exc)
        else:
            reason = f"The import stopped on an error ({type(exc).__name__})."
        if committed:
            reason += (
                f" The first {committed} rows (up to row {kept[committed - 1].number}) were imported and "
                "stay imported; re-upload the file to import the rest: rows already imported are matched "
                "by email or external id, not created again."
            )
        else:
            reason += " Nothing was imported."
        first_not_imported = kept[committed].number if committed < len(kept) else committed + 1
        with contextlib.suppress(JobAbandoned):  # failed by another process already: its report stands
            await _update(
                database,
                job_id,
                status="failed",
                errors=[{"row": first_not_imported, "field": None, "reason": reason}],
                processed=committed,
                created=created,
                matched=matched,
                finished=True,
            )
    finally:
        PROGRESS.pop(job_id, None)


def _row_result(row: CheckedRow, outcome: str, customer_id: str | None = None) -> dict[str, Any]:
    # The row as sent is kept when it was not imported whole (to fix it and upload it again).
    return {
        "row": row.number,
        "outcome": outcome,
        "customer_id": customer_id,
        "errors": row.errors,
        "raw": row.raw if row.errors else None,
    }


async def _write_rows(database: Database, job_id: str, results: list[dict[str, Any]]) -> None:
    for start in range(0, len(results), 5_000):
        async with database.session() as session:
            await session.execute(
                insert(ImportRow.__table__),  # type: ignore[attr-defined]
                [{"job_id": job_id, **r} for r in results[start : start + 5_000]],
            )


async def _validate_all(
    database: Database, context: CustomerContext, job_id: str, rows: list[ParsedRow], fmt: str, on_error: str
) -> list[CheckedRow]:
    """`check_rows` in blocks, with a heartbeat after each block (validating a big file takes a while).
    A file of more than one block is validated by the worker processes (`workers`), which take blocks
    from its end; until they are up, this process validates blocks from its start, in a worker thread
    (so the event loop keeps serving requests). Otherwise every block is validated that way. A block a
    worker process did not return (it died) is validated here."""
    blocks = [
        rows[start : start + VALIDATION_BLOCK_ROWS] for start in range(0, len(rows), VALIDATION_BLOCK_ROWS)
    ]
    done: list[list[CheckedRow] | None] = [None] * len(blocks)
    # Blocks [front, back) are not claimed yet: this process claims `front`, the workers `back - 1`.
    front, back = 0, len(blocks)
    started: set[int] = set()  # the helpers (below) whose worker process is up

    async def from_the_end(pool: ProcessPoolExecutor, helper: int) -> None:
        nonlocal back
        await workers.VALIDATION.spawned(pool)
        await asyncio.wrap_future(pool.submit(workers.ready))
        started.add(helper)
        while front < back:
            back -= 1
            n = back
            packed = await workers.VALIDATION.run(
                pool, check_packed, context.default_region, pack_rows(blocks[n]), fmt, on_error
            )
            done[n] = unpack_checked(blocks[n], packed)
            await _update(database, job_id, status="running")

    pool = workers.VALIDATION.pool(context.import_validation_processes) if len(blocks) > 1 else None
    with workers.VALIDATION.in_use() if pool is not None else contextlib.nullcontext():
        helpers = (
            [asyncio.ensure_future(from_the_end(pool, n)) for n in range(context.import_validation_processes)]
            if pool
            else []
        )
        try:
            # Until every worker process is up (they start while the file is read: see `workers.warm`).
            # Not after: this process's thread would hold the GIL against the one that hands the
            # workers' answers over, and they would come back late.
            while front < back and (not helpers or len(started) < len(helpers)):
                n, front = front, front + 1
                done[n] = await asyncio.to_thread(check_rows, context, blocks[n], fmt, on_error)
                collect_young()
                await _update(database, job_id, status="running")
        finally:
            for n, helper in enumerate(helpers):
                if n not in started:  # its worker process never came up in time: it holds no block
                    helper.cancel()
            results = await asyncio.gather(*helpers, return_exceptions=True)
    if pool is not None and any(isinstance(r, BrokenProcessPool) for r in results):
        log.warning("import job %s: a validation worker process died; its blocks are validated here", job_id)
        workers.VALIDATION.discard(pool)
    for n, block in enumerate(blocks):
        if done[n] is None:
            done[n] = await asyncio.to_thread(check_rows, context, block, fmt, on_error)
    return [row for block_rows in done if block_rows is not None for row in block_rows]


class JobAbandoned(RuntimeError):
    pass


ACTIVE_STATUSES = ("pending", "running")


class _Checkpoints:
    """On a SQLite file, an import's chunks commit without checkpointing the write-ahead log (each
    chunk writes more pages than SQLite's auto-checkpoint threshold, so every commit would copy the log
    into the database file, with its fsyncs, before the next chunk could start: about 3 s of a
    100,000-row import); a passive checkpoint of its own runs in a worker thread after each chunk,
    while the next one is worked out (SQLite releases the GIL), one at a time."""

    def __init__(self, database: Database) -> None:
        self._checkpointer = WalCheckpointer.for_url(database.url) if database.is_sqlite else None
        self._running: asyncio.Future[tuple[int, int, int]] | None = None

    @property
    def enabled(self) -> bool:
        return self._checkpointer is not None

    async def after_chunk(self) -> None:
        if self._checkpointer is None:
            return
        await self._wait()
        self._running = asyncio.ensure_future(asyncio.to_thread(self._checkpointer.checkpoint))

    async def _wait(self) -> None:
        running, self._running = self._running, None
        if running is None:
            return
        try:
            await running
        except Exception as exc:  # a checkpoint that failed leaves the log to the next one
            log.warning("WAL checkpoint during an import failed: %s", exc)

    async def close(self) -> None:
        await self._wait()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.close)


async def _import_chunk(
    database: Database,
    importer: BulkImporter,
    job_id: str,
    chunk: list[CheckedRow],
    *,
    ahead: list[Any] | None = None,
    done: int,
    checkpoints_elsewhere: bool = False,
) -> ChunkResult:
    """One chunk in one transaction with the job's progress and the chunk's row results; retried when a
    concurrent writer took an identifier first (the retry matches it) or the database was busy."""
    profiles = [row.profile for row in chunk if row.profile is not None]
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            result = await _write_chunk(
                database,
                importer,
                job_id,
                chunk,
                profiles,
                ahead=ahead or [],
                done=done,
                checkpoints_elsewhere=checkpoints_elsewhere,
            )
        except (IntegrityError, OperationalError):
            importer.forget()
            if attempt == CHUNK_ATTEMPTS:
                raise
            log.warning("import job %s: chunk at row %d conflicted, retrying", job_id, done + 1)
        else:
            importer.chunk_committed()
            return result
    raise AssertionError("unreachable")


async def _write_chunk(
    database: Database,
    importer: BulkImporter,
    job_id: str,
    chunk: list[CheckedRow],
    profiles: list[Any],
    *,
    ahead: list[Any],
    done: int,
    checkpoints_elsewhere: bool = False,
) -> ChunkResult:
    async with (
        database.session() as session,
        _sqlite_chunk_cache(session, database.is_sqlite, checkpoints_elsewhere=checkpoints_elsewhere),
    ):
        result = await importer.import_chunk(session, profiles, ahead)
        await _progress(
            session,
            job_id,
            processed_rows=done + len(chunk),
            created_count=col(ImportJob.created_count) + result.created,
            matched_count=col(ImportJob.matched_count) + result.matched,
        )
        await insert_rows(
            session,
            ImportRow,
            [
                {"job_id": job_id, **_row_result(row, outcome, customer_id)}
                for row, (outcome, customer_id) in zip(chunk, result.outcomes, strict=True)
            ],
        )
        importer.chunk_written()
        if checkpoints_elsewhere:
            await _commit_in_place(session)
    return result


@dataclass
class _Merges:
    """The auto-merges a job's chunks decide, carried out after each chunk commits,
    MERGES_PER_TRANSACTION per transaction (so that other writers get the database between them),
    each transaction with the job's heartbeat. A row that created the merged customer becomes `merged`
    into the survivor; one that matched it now names the survivor. A merge that no longer applies
    (either customer merged or changed meanwhile) is skipped and its pair stays open for review: a
    transaction that lost such a race is done again one merge per transaction."""

    database: Database
    importer: BulkImporter
    job_id: str
    # The rows of the job that created or matched each customer (their results follow a merge).
    rows_of: dict[str, list[int]] = field(default_factory=dict)

    def record(self, chunk: list[CheckedRow], result: ChunkResult) -> None:
        for row, (_, customer_id) in zip(chunk, result.outcomes, strict=True):
            self.rows_of.setdefault(customer_id, []).append(row.number)

    async def carry_out(self, merges: list[tuple[str, str, float]]) -> None:
        for start in range(0, len(merges), MERGES_PER_TRANSACTION):
            batch = merges[start : start + MERGES_PER_TRANSACTION]
            try:
                await self._batch(batch)
            except Conflict:
                for merge in batch:
                    with contextlib.suppress(Conflict):
                        await self._batch([merge])

    async def _batch(self, batch: list[tuple[str, str, float]]) -> None:
        """`batch` in one transaction; `rows_of` follows once it commits."""
        moved_rows: dict[str, list[int]] = {}  # what `rows_of` becomes for the customers it merged

        def rows(customer_id: str) -> list[int]:
            return moved_rows[customer_id] if customer_id in moved_rows else self.rows_of.get(customer_id, [])

        async with self.database.session() as session:
            for survivor_id, merged_id, total in batch:
                if not await self.importer.auto_merge(session, survivor_id, merged_id, total):
                    continue
                moved = rows(merged_id)
                moved_rows[merged_id], moved_rows[survivor_id] = [], [*rows(survivor_id), *moved]
                for part in duplicates.in_list_parts(moved):
                    await session.execute(
                        update(ImportRow)
                        .where(col(ImportRow.job_id) == self.job_id, col(ImportRow.row).in_(part))
                        .values(
                            customer_id=survivor_id,
                            outcome=case(
                                (col(ImportRow.outcome) == "created", "merged"), else_=col(ImportRow.outcome)
                            ),
                        )
                    )
            await _progress(session, self.job_id)
        for customer_id, numbers in moved_rows.items():
            if numbers:
                self.rows_of[customer_id] = numbers
            else:
                self.rows_of.pop(customer_id, None)


async def _progress(session: AsyncSession, job_id: str, **values: Any) -> None:
    """The running job's heartbeat (and `values`), in `session`'s transaction: a compare-and-set on
    `running`. When another process found no progress for too long and failed the job, this raises
    JobAbandoned (the transaction rolls back) rather than work on behind its back."""
    progressed = await compare_and_set(
        session,
        update(ImportJob)
        .where(col(ImportJob.id) == job_id, col(ImportJob.status) == "running")
        .values(heartbeat_at=customers.now(), **values),
    )
    if not progressed:
        raise JobAbandoned("The job was marked failed as abandoned while it was running.")


async def _commit_in_place(session: AsyncSession) -> None:
    """Commit the chunk's transaction now, on its driver connection, while the chunk's SQLite settings
    are in force (they are set back before the session's own commit, which then finds no transaction
    open and does nothing: servicekit skips a commit when the driver has none open)."""
    await session.flush()
    connection = await session.connection()
    await connection.run_sync(_commit_driver)


def _commit_driver(connection: Any) -> None:
    driver = connection.connection.dbapi_connection
    assert driver is not None
    driver.commit()


@contextlib.asynccontextmanager
async def _sqlite_chunk_cache(
    session: AsyncSession, is_sqlite: bool, *, checkpoints_elsewhere: bool = False
) -> AsyncIterator[None]:
    """On SQLite, a page cache of SQLITE_CHUNK_CACHE_KIB for the chunk's connection (the default is
    2 MiB), set back to what it was when the chunk ends, failed or not. A chunk reads and writes about
    ten blocking keys and two identifiers per row at random places of indexes that outgrow the default
    cache; measured at 30,000 rows: 6% less CPU per imported row. With `checkpoints_elsewhere` (see
    `_Checkpoints`) the chunk's commit does not checkpoint (`wal_autocheckpoint` 0), also set back.
    Set on the driver's connection, so that the reset runs even when the session has failed."""
    if not is_sqlite:
        yield
        return
    connection = await session.connection()
    driver: Any = (await connection.get_raw_connection()).driver_connection
    async with driver.execute("PRAGMA cache_size") as cursor:
        (previous,) = await cursor.fetchone()
    await (await driver.execute(f"PRAGMA cache_size = -{SQLITE_CHUNK_CACHE_KIB}")).close()
    if checkpoints_elsewhere:
        async with driver.execute("PRAGMA wal_autocheckpoint") as cursor:
            (previous_checkpoint,) = await cursor.fetchone()
        await (await driver.execute("PRAGMA wal_autocheckpoint = 0")).close()
    try:
        yield
    finally:
        await (await driver.execute(f"PRAGMA cache_size = {int(previous)}")).close()
        if checkpoints_elsewhere:
            await (await driver.execute(f"PRAGMA wal_autocheckpoint = {int(previous_checkpoint)}")).close()


async def _refresh_statistics(database: Database) -> None:
    """PostgreSQL plans the chunk queries from table statistics; during a big import they lag behind
    (autovacuum is slower than the import), and a plan made for a small table scans the whole table per
    chunk. Analysing as the import doubles the tables keeps the plans on the indexes, at log(N) cost."""
    async with database.session() as session:
        await session.execute(text(f"ANALYZE {', '.join(ANALYZED_TABLES)}"))


async def _update(
    database: Database,
    job_id: str,
    *,
    status: str,
    errors: list[dict[str, Any]] | None = None,
    processed: int | None = None,
    created: int | None = None,
    matched: int | None = None,
    skipped: int | None = None,
    finished: bool = False,
) -> None:
    """The runner's write of the job's state: a compare-and-set from pending or running, so a job that
    another process failed as abandoned is never brought back (JobAbandoned instead)."""
    now = customers.now()
    values: dict[str, Any] = {"status": status, "heartbeat_at": now}
    for name, value in (
        ("errors", errors),
        ("processed_rows", processed),
        ("created_count", created),
        ("matched_count", matched),
        ("skipped_count", skipped),
    ):
        if value is not None:
            values[name] = value
    if finished:
        values["finished_at"] = now
    async with database.session() as session:
        won = await compare_and_set(
            session,
            update(ImportJob)
            .where(col(ImportJob.id) == job_id, col(ImportJob.status).in_(ACTIVE_STATUSES))
            .values(values),
        )
    if not won:
        raise JobAbandoned("The job was marked failed as abandoned while it was running.")


async def fail_abandoned_jobs(database: Database, *, stale_after: timedelta) -> int:
    """Mark failed the jobs left pending or running by a process that stopped (no progress written for
    `stale_after`); the uploaded file is not kept, so they cannot be resumed. Returns how many."""
    cutoff = customers.now() - stale_after
    async with database.session() as session:
        jobs = (
            await session.execute(select(ImportJob).where(col(ImportJob.status).in_(("pending", "running"))))
        ).scalars()
        failed = 0
        for job in list(jobs):
            if job.id not in PROGRESS and await _abandon(session, job, cutoff):
                failed += 1
    if failed:
        log.warning("marked %d abandoned import job(s) failed", failed)
    return failed


def _stale(job: ImportJob, cutoff: datetime) -> bool:
    """No progress written since `cutoff`."""
    return customers.aware(job.heartbeat_at or job.created_at) <= cutoff


async def _abandon(session: AsyncSession, job: ImportJob, cutoff: datetime) -> bool:
    """Fail a job that made no progress since `cutoff`, as a compare-and-set on its status and its last
    progress: a chunk that commits meanwhile (fresh heartbeat) keeps the job running, and of concurrent
    readers exactly one fails it. True when this call failed it (`job` is then refreshed)."""
    if not _stale(job, cutoff):
        return False
    committed = job.processed_rows
    reason = "The service stopped while this job was running; the uploaded file was not kept."
    if committed:
        reason += (
            f" The first {committed} rows were imported and stay imported; re-upload the file to import "
            "the rest (rows already imported are matched by email or external id, not created again)."
        )
    else:
        reason += " Nothing was imported; re-upload the file."
    won = await compare_and_set(
        session,
        update(ImportJob)
        .where(
            col(ImportJob.id) == job.id,
            col(ImportJob.status).in_(ACTIVE_STATUSES),
            col(ImportJob.processed_rows) == committed,
            or_(
                col(ImportJob.heartbeat_at) <= cutoff,
                and_(col(ImportJob.heartbeat_at).is_(None), col(ImportJob.created_at) <= cutoff),
            ),
        )
        .values(
            status="failed",
            finished_at=customers.now(),
            errors=[{"row": committed + 1, "field": None, "reason": reason}],
        ),
    )
    if won:
        await session.refresh(job)
    return won


async def get(database: Database, job_id: str, *, stale_after: timedelta | None = None) -> ImportJob | None:
    """The job; one of this process shows its live progress, and one left running by a stopped
    process (no progress for `stale_after`) is marked failed on the way."""
    if job_id in PROGRESS:
        async with database.sessionmaker() as session:
            job = await session.get(ImportJob, job_id)
        if job is not None:
            job.status = "running"
            job.processed_rows = max(job.processed_rows, PROGRESS.get(job_id, 0))
        return job
    async with database.session() as session:
        job = await session.get(ImportJob, job_id)
        if job is not None and stale_after is not None and job.status in ACTIVE_STATUSES:
            abandoned = await _abandon(session, job, customers.now() - stale_after)
            if not abandoned:
                await session.refresh(job)  # another reader or the runner may have moved it meanwhile
    return job


async def list_jobs(
    database: Database,
    *,
    status: str | None,
    before_id: str | None,
    limit: int,
    stale_after: timedelta | None = None,
) -> list[ImportJob]:
    """Jobs, newest first (ids are time-ordered), up to limit + 1 (one more says there is more); each
    active one as `get` shows it (live progress here, or failed when left running by a stopped process)."""
    query = select(ImportJob).order_by(col(ImportJob.id).desc()).limit(limit + 1)
    if status is not None:
        query = query.where(col(ImportJob.status) == status)
    if before_id is not None:
        query = query.where(col(ImportJob.id) < before_id)
    async with database.sessionmaker() as session:
        jobs = list((await session.execute(query)).scalars())
    return [
        (await get(database, job.id, stale_after=stale_after) or job)
        if job.status in ACTIVE_STATUSES
        else job
        for job in jobs
    ]


async def row_results(
    database: Database, job_id: str, *, outcome: str | None, after_row: int | None, limit: int
) -> list[ImportRow]:
    query = select(ImportRow).where(col(ImportRow.job_id) == job_id)
    if outcome is not None:
        query = query.where(col(ImportRow.outcome) == outcome)
    if after_row is not None:
        query = query.where(col(ImportRow.row) > after_row)
    async with database.session() as session:
        return list((await session.execute(query.order_by(col(ImportRow.row)).limit(limit + 1))).scalars())


def _reasons(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{e.get('field') or 'row'}: {e.get('reason')}" + (" (dropped)" if e.get("dropped") else "")
        for e in errors
    )


async def row_results_csv(database: Database, job_id: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "outcome", "customer_id", "errors"])
    async with database.session() as session:
        for result in (
            await session.execute(
                select(ImportRow).where(col(ImportRow.job_id) == job_id).order_by(col(ImportRow.row))
            )
        ).scalars():
            writer.writerow([result.row, result.outcome, result.customer_id or "", _reasons(result.errors)])
    return out.getvalue()


async def rejected_rows(database: Database, job: ImportJob) -> str:
    """The rows not imported whole, as they were sent, each with its problems."""
    async with database.session() as session:
        rows = list(
            (
                await session.execute(
                    select(ImportRow)
                    .where(col(ImportRow.job_id) == job.id, col(ImportRow.raw).is_not(None))
                    .order_by(col(ImportRow.row))
                )
            ).scalars()
        )
    if job.format != "csv":
        return "".join(json.dumps({**(r.raw or {}), "_errors": r.errors}) + "\n" for r in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*CSV_COLUMNS, "errors"], extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({**(r.raw or {}), "errors": _reasons(r.errors)})
    return out.getvalue()
