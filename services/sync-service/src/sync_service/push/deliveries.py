"""The database side of pushes: the listings a push carries, the acknowledgements and failures it
records (each a compare-and-set on the listing's desired_seq, so an answer about an older state never
overwrites a newer one), the deliveries list and replays."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from servicekit.errors import Conflict, NotFound
from servicekit.http.pagination import Page, PageParams, cursor_key, make_page
from servicekit.transitions import compare_and_set
from sync_service.common import as_utc, new_id, utc_now
from sync_service.listings.models import Listing
from sync_service.push.models import Delivery

MAX_ERROR = 1000


@dataclass(frozen=True)
class Sent:
    """A listing as a push carried it."""

    sku: str
    seq: int
    digest: str
    publishable: bool
    desired_at: datetime


@dataclass(frozen=True)
class Pending:
    """A pending listing as a push carries it: what the acknowledgement compares with, and its desired
    state as the database holds it (JSON text, put in the push's body as it is, never decoded)."""

    sent: Sent
    desired_json: str


async def pending_listings(
    session: AsyncSession | AsyncConnection, *, channel_id: str, skus: Collection[str]
) -> list[Pending]:
    """The listings of `skus` on the channel that are pending, by SKU."""
    table: Any = Listing.__table__  # type: ignore[attr-defined]
    query = (
        select(
            table.c.sku,
            table.c.desired_seq,
            table.c.desired_hash,
            table.c.publishable,
            table.c.desired_at,
            cast(table.c.desired, Text),  # the JSON as stored (asyncpg would decode a json column)
        )
        .where(table.c.channel_id == channel_id, table.c.sku.in_(sorted(skus)), table.c.status == "pending")
        .order_by(table.c.sku)
    )
    return [
        Pending(
            sent=Sent(
                sku=sku, seq=seq, digest=digest, publishable=publishable, desired_at=as_utc(desired_at)
            ),
            desired_json=desired,
        )
        for sku, seq, digest, publishable, desired_at, desired in (await session.execute(query)).all()
    ]


async def acknowledge_many(
    session: AsyncSession, *, answers: Sequence[tuple[str, Sent, dict[str, Any] | None, str | None, datetime]]
) -> None:
    """Record what channels say they hold after pushes (channel id, listing as pushed, state held, its
    `state_hash`, time of the answer), for many listings of any channels in two statements. A listing
    still at the pushed sequence takes the answer as its acknowledged state and becomes in_sync (or
    unpublished) when the answer is what was pushed, drifted when not: a compare-and-set on desired_seq.
    A listing whose desired state moved on meanwhile keeps its status (pending) and only records the
    answer, unless it holds a newer answer already."""
    if not answers:
        return
    rows = []
    for channel_id, sent, held, digest, now in answers:
        matches = digest == sent.digest
        rows.append(
            {
                "b_channel": channel_id,
                "b_sku": sent.sku,
                "b_seq": sent.seq,
                "b_acked": held,
                "b_hash": digest,
                "b_now": now,
                "b_status": ("in_sync" if sent.publishable else "unpublished") if matches else "drifted",
                "b_error": None if matches else "the channel acknowledged a state other than the one pushed",
            }
        )
    table: Any = Listing.__table__  # type: ignore[attr-defined]
    acked = {
        "acked": bindparam("b_acked", type_=table.c.acked.type),
        "acked_hash": bindparam("b_hash"),
        "acked_seq": bindparam("b_seq"),
        "acked_at": bindparam("b_now", type_=table.c.acked_at.type),
        "updated_at": bindparam("b_now", type_=table.c.updated_at.type),
    }
    same = (col(Listing.channel_id) == bindparam("b_channel"), col(Listing.sku) == bindparam("b_sku"))
    connection = await session.connection()
    await connection.execute(
        update(Listing)
        .where(
            *same,
            col(Listing.desired_seq) == bindparam("b_seq"),
            col(Listing.acked_seq) <= bindparam("b_seq"),
        )
        .values(**acked, status=bindparam("b_status"), last_error=bindparam("b_error")),
        rows,
    )
    await connection.execute(
        update(Listing)
        .where(
            *same, col(Listing.desired_seq) > bindparam("b_seq"), col(Listing.acked_seq) < bindparam("b_seq")
        )
        .values(**acked),
        rows,
    )


async def fail_many(session: AsyncSession, *, failures: Sequence[tuple[str, Sent, str, datetime]]) -> None:
    """Mark listings failed (channel id, listing as pushed, error, time) that are still pending at the
    pushed sequence, in one statement: each a compare-and-set on that sequence and status pending."""
    if not failures:
        return
    statement = (
        update(Listing)
        .where(
            col(Listing.channel_id) == bindparam("b_channel"),
            col(Listing.sku) == bindparam("b_sku"),
            col(Listing.desired_seq) == bindparam("b_seq"),
            col(Listing.status) == "pending",
        )
        .values(
            status="failed",
            last_error=bindparam("b_error"),
            updated_at=bindparam("b_now", type_=Listing.__table__.c.updated_at.type),  # type: ignore[attr-defined]
        )
    )
    rows = [
        {
            "b_channel": channel_id,
            "b_sku": sent.sku,
            "b_seq": sent.seq,
            "b_error": error[:MAX_ERROR],
            "b_now": now,
        }
        for channel_id, sent, error, now in failures
    ]
    await (await session.connection()).execute(statement, rows)


def delivery_row(
    *,
    channel_id: str,
    sent: Sequence[Sent],
    outcome: str,
    attempts: int,
    status_code: int | None,
    error: str | None,
    latency_ms: float | None,
    started_at: datetime,
) -> dict[str, Any]:
    """A push's delivery row, as the values of an INSERT into `deliveries` (no ORM object: they are many)."""
    return {
        "id": new_id(),
        "channel_id": channel_id,
        "seqs": {s.sku: s.seq for s in sent},
        "outcome": outcome,
        "attempts": attempts,
        "status_code": status_code,
        "error": error[:MAX_ERROR] if error else None,
        "latency_ms": latency_ms,
        "started_at": started_at,
        "finished_at": utc_now(),
        "replayed_at": None,
    }


async def list_deliveries(
    session: AsyncSession, *, channel_id: str, outcome: str | None, page: PageParams
) -> Page[Delivery]:
    """A channel's deliveries, newest first; cursor pagination."""
    key = cursor_key(page.cursor, ("id", str))
    query = select(Delivery).where(col(Delivery.channel_id) == channel_id)
    if outcome is not None:
        query = query.where(col(Delivery.outcome) == outcome)
    if key is not None:
        query = query.where(col(Delivery.id) < key[0])
    rows = (
        (await session.execute(query.order_by(col(Delivery.id).desc()).limit(page.limit + 1))).scalars().all()
    )
    return make_page(list(rows), page.limit, lambda delivery: {"id": delivery.id})


async def replay(session: AsyncSession, *, channel_id: str, delivery_id: str) -> list[str]:
    """Send a failed delivery's listings again: they go back to pending (those still failed) and the
    delivery is marked replayed; 409 when it did not fail or was replayed already (a compare-and-set:
    two concurrent replays, one wins). Returns the SKUs to push."""
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.channel_id != channel_id:
        raise NotFound(f"No delivery {delivery_id} of this channel.")
    won = await compare_and_set(
        session,
        update(Delivery)
        .where(
            col(Delivery.id) == delivery_id,
            col(Delivery.outcome) == "failed",
            col(Delivery.replayed_at).is_(None),
        )
        .values(replayed_at=utc_now()),
    )
    if not won:
        raise Conflict("Only a failed delivery that was not replayed yet can be replayed.")
    return await _back_to_pending(session, channel_id=channel_id, skus=list(delivery.seqs))


async def replay_failed(session: AsyncSession, *, channel_id: str) -> list[str]:
    """Every failed listing of the channel back to pending; every failed delivery marked replayed."""
    now = utc_now()
    await session.execute(
        update(Delivery)
        .where(
            col(Delivery.channel_id) == channel_id,
            col(Delivery.outcome) == "failed",
            col(Delivery.replayed_at).is_(None),
        )
        .values(replayed_at=now)
        .execution_options(synchronize_session=False)
    )
    skus = (
        (
            await session.execute(
                select(col(Listing.sku)).where(
                    col(Listing.channel_id) == channel_id, col(Listing.status) == "failed"
                )
            )
        )
        .scalars()
        .all()
    )
    return await _back_to_pending(session, channel_id=channel_id, skus=list(skus))


async def _back_to_pending(session: AsyncSession, *, channel_id: str, skus: list[str]) -> list[str]:
    moved: list[str] = []
    for sku in skus:
        if await compare_and_set(
            session,
            update(Listing)
            .where(
                col(Listing.channel_id) == channel_id,
                col(Listing.sku) == sku,
                col(Listing.status) == "failed",
            )
            .values(status="pending", last_error=None, updated_at=utc_now()),
        ):
            moved.append(sku)
    return moved


async def latency_percentiles(
    session: AsyncSession, *, channel_id: str, window: int = 1000
) -> Mapping[str, float | None]:
    """p50 and p99 of the latest `window` successful deliveries' latency (ms), or None without any."""
    rows = (
        (
            await session.execute(
                select(col(Delivery.latency_ms))
                .where(
                    col(Delivery.channel_id) == channel_id,
                    col(Delivery.outcome) == "succeeded",
                    col(Delivery.latency_ms).is_not(None),
                )
                .order_by(col(Delivery.id).desc())
                .limit(window)
            )
        )
        .scalars()
        .all()
    )
    values = sorted(float(v) for v in rows if v is not None)
    if not values:
        return {"p50": None, "p99": None}

    def pick(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    return {"p50": pick(0.5), "p99": pick(0.99)}
