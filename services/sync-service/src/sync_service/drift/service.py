"""Drift rules: compare what a channel holds with the listings, record each difference by field, move the
listings' status (compare-and-set on the desired_seq that was compared), and the jobs' transitions
(each a compare-and-set on the job's status)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from servicekit.errors import Conflict, NotFound
from servicekit.http.pagination import Page, PageParams, cursor_key, make_page
from servicekit.transitions import compare_and_set
from sync_service.common import new_id, utc_now
from sync_service.drift.models import DriftFinding, SyncJob
from sync_service.listings.models import Listing

COMPARED_FIELDS = (
    "title",
    "brand",
    "description",
    "gtin",
    "attributes",
    "media_urls",
    "currency",
    "price",
    "sale",
    "quantity",
    "published",
)
ALWAYS_COMPARED = ("price", "quantity", "published")
"""Fields compared even when the channel's state leaves them out (a channel that drops them drifted)."""
COMPARABLE_STATUSES = ("in_sync", "drifted", "unpublished")
"""A pending or failed listing is on its way (or already reported): it is not compared."""
MAX_VALUE_CHARS = 2000
MAX_UNKNOWN_REPORTED = 1000
STALE_JOB_SECONDS = 600
"""A queued or running job without a sign of life for this long (its process died) is abandoned: it ends
failed and frees its channel. A running job beats at every page (500 listings)."""

Difference = tuple[str, Any, Any]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _bounded(value: Any) -> Any:
    """A value small enough to store in a finding."""
    text = _canonical(value)
    return value if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def differences(expected: Mapping[str, Any] | None, actual: Mapping[str, Any] | None) -> list[Difference]:
    """(field, expected, actual) for every field the channel holds differently. `expected` None: the
    channel holds a SKU sync-service has no listing of; `actual` None: the channel holds nothing."""
    if expected is None:
        return [] if actual is None else [("listing", None, "held by the channel")]
    if actual is None:
        return [("listing", "published", None)] if expected.get("published") else []
    found: list[Difference] = []
    for field in COMPARED_FIELDS:
        if field not in actual and field not in ALWAYS_COMPARED:
            continue
        want, held = expected.get(field), actual.get(field)
        if _canonical(want) != _canonical(held):
            found.append((field, _bounded(want), _bounded(held)))
    return found


async def start_job(
    session: AsyncSession, *, channel_id: str, kind: str, source: str, actor: str, total: int = 0
) -> SyncJob:
    """A queued job; 409 while another job of the channel is queued or running (the unique
    `active_channel` decides between two concurrent starts). A job of the channel that gave no sign of
    life for `STALE_JOB_SECONDS` is abandoned first."""
    now = utc_now()
    await session.execute(
        update(SyncJob)
        .where(
            col(SyncJob.active_channel) == channel_id,
            col(SyncJob.heartbeat_at) < now - timedelta(seconds=STALE_JOB_SECONDS),
        )
        .values(
            status="failed",
            active_channel=None,
            finished_at=now,
            error="abandoned: no sign of life (its process stopped)",
        )
        .execution_options(synchronize_session=False)
    )
    job = SyncJob(
        id=new_id(),
        channel_id=channel_id,
        kind=kind,
        source=source,
        status="queued",
        active_channel=channel_id,
        total=total,
        actor=actor[:200],
        created_at=now,
        heartbeat_at=now,
    )
    session.add(job)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(
            "A reconcile or resync of this channel is already running; wait for it to end."
        ) from None
    return job


async def move_job(session: AsyncSession, *, job_id: str, expected: str, to: str, **values: Any) -> bool:
    """queued -> running -> succeeded | failed, a compare-and-set on the status; a job that ends frees its
    channel for the next one."""
    now = utc_now()
    values["heartbeat_at"] = now
    if to == "running":
        values["started_at"] = now
    if to in ("succeeded", "failed"):
        values.update(finished_at=now, active_channel=None)
    return await compare_and_set(
        session,
        update(SyncJob)
        .where(col(SyncJob.id) == job_id, col(SyncJob.status) == expected)
        .values(status=to, **values),
    )


async def progress(session: AsyncSession, *, job_id: str, **counts: int) -> bool:
    """Add to a running job's counters (False when it no longer runs)."""
    values: dict[str, Any] = {name: getattr(SyncJob, name) + amount for name, amount in counts.items()}
    values["heartbeat_at"] = utc_now()
    return await compare_and_set(
        session,
        update(SyncJob).where(col(SyncJob.id) == job_id, col(SyncJob.status) == "running").values(**values),
    )


async def enter_phase(session: AsyncSession, *, job_id: str, phase: str) -> bool:
    """A running resync's phase (pull, push); False when it no longer runs."""
    return await compare_and_set(
        session,
        update(SyncJob)
        .where(col(SyncJob.id) == job_id, col(SyncJob.status) == "running")
        .values(phase=phase, heartbeat_at=utc_now()),
    )


async def get_job(session: AsyncSession, job_id: str) -> SyncJob:
    job = await session.get(SyncJob, job_id)
    if job is None:
        raise NotFound(f"No job {job_id}.")
    return job


async def compare_page(
    session: AsyncSession,
    *,
    channel_id: str,
    job_id: str,
    listings: Sequence[Listing],
    held: Mapping[str, Mapping[str, Any] | None],
) -> tuple[list[tuple[str, int]], int]:
    """Compare a page of listings with what the channel holds; record the findings (replacing the
    previous ones of these SKUs), mark the listings that drifted and bring back those that no longer do.
    Returns the (SKU, desired_seq) pairs marked drifted and the number of listings skipped."""
    now = utc_now()
    skus = [listing.sku for listing in listings]
    await session.execute(
        delete(DriftFinding).where(
            col(DriftFinding.channel_id) == channel_id, col(DriftFinding.sku).in_(skus)
        )
    )
    drifted: list[tuple[str, int]] = []
    skipped = 0
    for listing in listings:
        if listing.status not in COMPARABLE_STATUSES:
            skipped += 1
            continue
        found = differences(listing.desired, held.get(listing.sku))
        same = (
            col(Listing.channel_id) == channel_id,
            col(Listing.sku) == listing.sku,
            col(Listing.desired_seq) == listing.desired_seq,
        )
        if not found:
            if listing.status == "drifted":
                await compare_and_set(
                    session,
                    update(Listing)
                    .where(*same, col(Listing.status) == "drifted")
                    .values(
                        status="in_sync" if listing.publishable else "unpublished",
                        last_error=None,
                        updated_at=now,
                    ),
                )
            continue
        session.add_all(
            DriftFinding(
                channel_id=channel_id,
                sku=listing.sku,
                field=field,
                expected=expected,
                actual=actual,
                job_id=job_id,
                detected_at=now,
            )
            for field, expected, actual in found
        )
        fields = ", ".join(field for field, _, _ in found)
        if await compare_and_set(
            session,
            update(Listing)
            .where(*same, col(Listing.status).in_(COMPARABLE_STATUSES))
            .values(status="drifted", last_error=f"drift: {fields}"[:1000], updated_at=now),
        ):
            drifted.append((listing.sku, listing.desired_seq))
    return drifted, skipped


async def record_unknown(session: AsyncSession, *, channel_id: str, job_id: str, skus: Sequence[str]) -> None:
    """Findings for SKUs the channel holds that sync-service has no listing of (report only)."""
    now = utc_now()
    for sku in skus[:MAX_UNKNOWN_REPORTED]:
        await session.execute(
            delete(DriftFinding).where(
                col(DriftFinding.channel_id) == channel_id, col(DriftFinding.sku) == sku
            )
        )
        for field, expected, actual in differences(None, {}):
            session.add(
                DriftFinding(
                    channel_id=channel_id,
                    sku=sku[:100],
                    field=field,
                    expected=expected,
                    actual=actual,
                    job_id=job_id,
                    detected_at=now,
                )
            )


async def heal(session: AsyncSession, *, channel_id: str, drifted: Sequence[tuple[str, int]]) -> list[str]:
    """Drifted listings back to pending (still at the compared desired_seq): the push pipeline sends their
    desired state again. Returns the SKUs to push."""
    moved: list[str] = []
    for sku, seq in drifted:
        if await compare_and_set(
            session,
            update(Listing)
            .where(
                col(Listing.channel_id) == channel_id,
                col(Listing.sku) == sku,
                col(Listing.desired_seq) == seq,
                col(Listing.status) == "drifted",
            )
            .values(status="pending", updated_at=utc_now()),
        ):
            moved.append(sku)
    return moved


async def list_findings(
    session: AsyncSession, *, channel_id: str, sku: str | None, page: PageParams
) -> Page[DriftFinding]:
    key = cursor_key(page.cursor, ("id", int))
    query = select(DriftFinding).where(col(DriftFinding.channel_id) == channel_id)
    if sku is not None:
        query = query.where(col(DriftFinding.sku) == sku)
    if key is not None:
        query = query.where(col(DriftFinding.id) > key[0])
    rows = (await session.execute(query.order_by(col(DriftFinding.id)).limit(page.limit + 1))).scalars().all()
    return make_page(list(rows), page.limit, lambda finding: {"id": finding.id})
