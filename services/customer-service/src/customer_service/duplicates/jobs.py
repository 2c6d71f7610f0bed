"""Background jobs of duplicate detection: fitting the linkage model to the shop's profiles (EM), and
re-scanning the whole base with the current model to list the candidate pairs not known yet."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import uuid7
from customer_service.context import CustomerContext
from customer_service.crypto import WrappedKey, decrypt_document
from customer_service.customers import service as customers
from customer_service.customers.models import Customer, CustomerIdentifier
from customer_service.duplicates import linkage
from customer_service.duplicates import service as duplicates
from customer_service.duplicates.matching import Side, side_of
from customer_service.duplicates.model_store import current_model
from customer_service.duplicates.models import DuplicateCandidate, DuplicateJob, LinkageModelRecord
from servicekit.db import Database
from servicekit.errors import Conflict, NotFound

log = logging.getLogger(__name__)

PAGE_ROWS = 2_000
# A re-scan compares each blocking block's members up to this many (the most recent ones).
RESCAN_MAX_BLOCK = 100
TRAIN = "train"
RESCAN = "rescan"
ACTIVE = ("pending", "running")


# --- jobs ------------------------------------------------------------------------------------------


async def create_job(
    database: Database, *, kind: str, actor: str, stale_after: timedelta = timedelta(seconds=120)
) -> DuplicateJob:
    """A new pending job; 409 while another job of the same kind is pending or running. A job whose
    process stopped (no heartbeat for `stale_after`) is marked failed (compare-and-set) and does not
    block a new one."""
    async with database.session() as session:
        cutoff = customers.now() - stale_after
        for job_id, heartbeat in (
            await session.execute(
                select(col(DuplicateJob.id), col(DuplicateJob.heartbeat_at)).where(
                    col(DuplicateJob.kind) == kind, col(DuplicateJob.status).in_(ACTIVE)
                )
            )
        ).all():
            if heartbeat is not None and customers.aware(heartbeat) <= cutoff:
                await session.execute(
                    update(DuplicateJob)
                    .where(col(DuplicateJob.id) == job_id, col(DuplicateJob.status).in_(ACTIVE))
                    .values(
                        status="failed",
                        error="The service stopped while this job was running.",
                        finished_at=customers.now(),
                    )
                )
                continue
            raise Conflict(f"A {kind} job is already running ({job_id}).")
        stamp = customers.now()
        job = DuplicateJob(id=str(uuid7()), kind=kind, actor=actor, created_at=stamp, heartbeat_at=stamp)
        session.add(job)
    return job


async def get_job(database: Database, job_id: str) -> DuplicateJob:
    async with database.session() as session:
        job = await session.get(DuplicateJob, job_id)
    if job is None:
        raise NotFound(f"No duplicate job {job_id}.")
    return job


async def _transition(database: Database, job_id: str, expected: str, **values: Any) -> bool:
    """Move the job from `expected` to a new state (compare-and-set); False if it was not there."""
    async with database.session() as session:
        result = await session.execute(
            update(DuplicateJob)
            .where(col(DuplicateJob.id) == job_id, col(DuplicateJob.status) == expected)
            .values(heartbeat_at=customers.now(), **values)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def _fail(database: Database, job_id: str, exc: Exception) -> None:
    """A running job ends failed with the error (logged with its traceback)."""
    log.exception("duplicate job %s failed", job_id)
    await _transition(
        database,
        job_id,
        "running",
        status="failed",
        error=f"{type(exc).__name__}: {exc}"[:1000],
        finished_at=customers.now(),
    )


async def _progress(database: Database, job_id: str, *, progress: str, processed: int, total: int) -> None:
    await _transition(database, job_id, "running", progress=progress[:200], processed=processed, total=total)


async def _load_sides(
    database: Database, context: CustomerContext, job_id: str
) -> tuple[list[str], list[Side]]:
    """Every active customer as a `Side` (decrypted in memory only), page by page with progress."""
    keyring = context.keyring
    ids: list[str] = []
    sides: list[Side] = []
    after = ""
    async with database.session() as session:
        total = len(
            (await session.execute(select(col(Customer.id)).where(col(Customer.status) == "active"))).all()
        )
    while True:
        async with database.session() as session:
            rows = (
                await session.execute(
                    select(
                        col(Customer.id),
                        col(Customer.first_name),
                        col(Customer.last_name),
                        col(Customer.key_id),
                        col(Customer.wrapped_key),
                        col(Customer.pii),
                    )
                    .where(col(Customer.status) == "active", col(Customer.id) > after)
                    .order_by(col(Customer.id))
                    .limit(PAGE_ROWS)
                )
            ).all()
            if not rows:
                break
            page_ids = [str(r[0]) for r in rows]
            external: dict[str, list[tuple[str, str]]] = {}
            for customer_id, kind, value in (
                await session.execute(
                    select(
                        col(CustomerIdentifier.customer_id),
                        col(CustomerIdentifier.kind),
                        col(CustomerIdentifier.value),
                    ).where(
                        col(CustomerIdentifier.customer_id).in_(page_ids),
                        col(CustomerIdentifier.kind).startswith(customers.EXTERNAL_PREFIX),
                    )
                )
            ).all():
                external.setdefault(str(customer_id), []).append(
                    (str(kind)[len(customers.EXTERNAL_PREFIX) :], str(value or ""))
                )
        for customer_id, first, last, kid, wrapped, pii in rows:
            document: dict[str, Any] = {}
            if pii is not None and kid is not None and wrapped is not None:
                document = decrypt_document(keyring.unwrap(WrappedKey(kid, wrapped)), pii, aad=customer_id)
            ids.append(str(customer_id))
            sides.append(side_of(first, last, document, external.get(str(customer_id))))
        after = ids[-1]
        await _progress(database, job_id, progress="reading profiles", processed=len(ids), total=total)
    return ids, sides


async def run_training(database: Database, context: CustomerContext, *, job_id: str) -> None:
    """Fit the model to the base (EM, unsupervised) and store it; it is in use from then on."""
    if not await _transition(database, job_id, "pending", status="running", progress="starting"):
        return
    try:
        _, sides = await _load_sides(database, context, job_id)
        if len(sides) < context.linkage_min_training_profiles:
            await _transition(
                database,
                job_id,
                "running",
                status="failed",
                error=f"{len(sides)} active profiles; a model is fitted to at least "
                f"{context.linkage_min_training_profiles} (CUSTOMER_LINKAGE_MIN_TRAINING_PROFILES). "
                "The model in use stays.",
                finished_at=customers.now(),
            )
            return
        await _progress(database, job_id, progress="fitting", processed=len(sides), total=len(sides))
        model = await asyncio.to_thread(linkage.train, sides, seed=len(sides))
        async with database.session() as session:
            record = LinkageModelRecord(
                id=str(uuid7()), params=model.to_json(), job_id=job_id, trained_at=customers.now()
            )
            session.add(record)
        context.linkage.model, context.linkage.model_id = model, record.id
        await _transition(
            database,
            job_id,
            "running",
            status="succeeded",
            progress="done",
            result={"model_id": record.id, "prior": model.prior, **model.stats},
            finished_at=customers.now(),
        )
    except Exception as exc:
        await _fail(database, job_id, exc)


def _scan(
    sides: list[Side], model: linkage.Model, threshold: float
) -> tuple[list[tuple[int, int, float, dict[str, float]]], int]:
    pairs = linkage.blocked_pairs(sides, max_block=RESCAN_MAX_BLOCK)
    found = []
    for a, b in pairs:
        probability, weights = linkage.score(sides[a], sides[b], model)
        if probability >= threshold:
            found.append((a, b, probability, weights))
    return found, len(pairs)


async def run_rescan(database: Database, context: CustomerContext, *, job_id: str) -> None:
    """Compare the whole base with the current model; list the pairs above the threshold that are not
    known yet as open candidates (nothing is merged: a steward reviews them)."""
    if not await _transition(database, job_id, "pending", status="running", progress="starting"):
        return
    try:
        async with database.session() as session:
            model = await current_model(session, context)
        ids, sides = await _load_sides(database, context, job_id)
        await _progress(database, job_id, progress="comparing", processed=len(ids), total=len(ids))
        found, compared = await asyncio.to_thread(_scan, sides, model, context.duplicate_threshold)
        created = 0
        for start in range(0, len(found), PAGE_ROWS):
            async with database.session() as session:
                for a, b, probability, weights in found[start : start + PAGE_ROWS]:
                    if await _known(session, ids[a], ids[b]):
                        continue
                    await duplicates.record_candidate(session, context, ids[a], ids[b], probability, weights)
                    created += 1
        await _transition(
            database,
            job_id,
            "running",
            status="succeeded",
            progress="done",
            result={
                "profiles": len(ids),
                "pairs_compared": compared,
                "above_threshold": len(found),
                "new_candidates": created,
            },
            finished_at=customers.now(),
        )
    except Exception as exc:
        await _fail(database, job_id, exc)


async def _known(session: AsyncSession, a_id: str, b_id: str) -> bool:
    a, b = (a_id, b_id) if a_id < b_id else (b_id, a_id)
    row = (
        await session.execute(
            select(col(DuplicateCandidate.id)).where(
                col(DuplicateCandidate.customer_a_id) == a, col(DuplicateCandidate.customer_b_id) == b
            )
        )
    ).first()
    return row is not None
