"""The database side of pushes: the listings a push carries, the acknowledgements and failures it
records (each a compare-and-set on the listing's desired_seq, so an answer about an older state never
overwrites a newer one), the deliveries list and replays."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Text, and_, bindparam, cast, not_, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from servicekit.errors import Conflict, NotFound
from servicekit.http.pagination import Page, PageParams, cursor_key, make_page
from servicekit.transitions import compare_and_set
from sync_service.common import as_utc, new_id, utc_now
from sync_service.listings.models import Listing
from sync_service.push.models import Delivery

MAX_ERROR = 1000


class Sent(NamedTuple):
    """A listing as a push carried it (a named tuple: a push builds thousands, cheaper than a frozen
    dataclass's)."""

    sku: str
    seq: int
    digest: str
    publishable: bool
    desired_at: datetime | None
    """When the change that produced its desired state happened (None when the push is not timed: not read)"""
    timed: bool = True
    """Its acknowledgement counts in the delivery latency (from `desired_at`): False for a resync's push of a
    state the channel held already (in sync, unpublished or drifted), which delivers no change"""
    confirm: bool = False
    """A resync's push of a listing the channel holds already by what was recorded (`held`: its acknowledged
    state is this very state, at this sequence), left as it was instead of being put back to pending: an
    answer that echoes it changes nothing, so nothing is written for it (`confirm_many`)"""


class HeldText(str):
    """A state a channel holds, as JSON text: the channel answered exactly the text pushed (decoded only
    when it has to be stored as an answer other than the listing's desired state)."""

    __slots__ = ()


Held = dict[str, Any] | HeldText | None
"""A state a channel holds: decoded, as the text pushed, or none."""


class Pending(NamedTuple):
    """A pending listing as a push carries it: what the acknowledgement compares with, and its desired
    state as the database holds it (JSON text, put in the push's body as it is, never decoded)."""

    sent: Sent
    desired_json: str


_LISTINGS: Any = Listing.__table__  # type: ignore[attr-defined]
PENDING_COLUMNS = (
    _LISTINGS.c.sku,
    _LISTINGS.c.desired_seq,
    _LISTINGS.c.desired_hash,
    _LISTINGS.c.publishable,
    _LISTINGS.c.desired_at,
    cast(_LISTINGS.c.desired, Text),  # the JSON as stored (asyncpg would decode a json column)
)
"""What a push carries of a listing, as `pending_rows` takes it (a SELECT or an UPDATE's RETURNING)."""


def held(table: Any) -> Any:
    """A listing the channel holds by what was recorded: in sync (or unpublished: it holds the listing's
    unpublished state), its acknowledged state its desired state at the same sequence. A resync pushes such
    a listing again without putting it back to pending (`Sent.confirm`)."""
    return and_(
        or_(table.c.status == "in_sync", table.c.status == "unpublished"),  # no IN: it goes in executemany
        table.c.acked_hash == table.c.desired_hash,
        table.c.acked_seq == table.c.desired_seq,
    )


HELD_COLUMNS = (
    _LISTINGS.c.sku,
    _LISTINGS.c.desired_seq,
    _LISTINGS.c.desired_hash,
    _LISTINGS.c.publishable,
    cast(_LISTINGS.c.desired, Text),
)
"""What the push of a held listing carries (`held_rows`): `PENDING_COLUMNS` but its moment, which a push
that is not timed does not read."""


def held_rows(rows: Iterable[Any]) -> list[Pending]:
    """`Pending` listings the channel holds (`Sent.confirm`, not timed) from rows of `HELD_COLUMNS`."""
    return [
        Pending(Sent(sku, seq, digest, publishable, None, False, True), desired)
        for sku, seq, digest, publishable, desired in rows
    ]


def pending_rows(rows: Sequence[Any]) -> list[Pending]:
    """`Pending` listings from rows of `PENDING_COLUMNS`, by SKU."""
    return sorted(
        (
            Pending(
                sent=Sent(
                    sku=sku, seq=seq, digest=digest, publishable=publishable, desired_at=as_utc(desired_at)
                ),
                desired_json=desired,
            )
            for sku, seq, digest, publishable, desired_at, desired in rows
        ),
        key=lambda row: row.sent.sku,
    )


async def pending_listings(
    session: AsyncSession | AsyncConnection, *, channel_id: str, skus: Collection[str]
) -> list[Pending]:
    """The listings of `skus` on the channel that are pending, by SKU."""
    parameters = {"channel_id": channel_id, "skus": sorted(skus)}
    return pending_rows((await session.execute(_PENDING_OF, parameters)).all())


async def held_listings(
    session: AsyncSession | AsyncConnection, *, channel_id: str, skus: Collection[str]
) -> list[Pending]:
    """The listings of `skus` on the channel that it holds by what was recorded (`held`), as a resync pushes
    them (`Sent.confirm`, not timed), by SKU."""
    parameters = {"channel_id": channel_id, "skus": sorted(skus)}
    return held_rows(await session.execute(_HELD_OF, parameters))


_OF_SKUS = and_(
    _LISTINGS.c.channel_id == bindparam("channel_id"), _LISTINGS.c.sku.in_(bindparam("skus", expanding=True))
)
# Built once (a push reads its listings with one of these): a statement built per push cost its
# construction and its cache key's walk each time.
_PENDING_OF = select(*PENDING_COLUMNS).where(_OF_SKUS, _LISTINGS.c.status == "pending")
_HELD_OF = select(*HELD_COLUMNS).where(_OF_SKUS, held(_LISTINGS)).order_by(_LISTINGS.c.sku)


async def confirm_many(
    session: AsyncSession, *, confirmed: Sequence[tuple[str, Sent, str, datetime]]
) -> list[tuple[str, Sent, Held, str | None, datetime]]:
    """The resync pushes of listings the channel held already (`Sent.confirm`) whose answer echoed them
    (channel id, listing as pushed, its desired state as pushed, time of the answer): nothing to write for
    those still held. Returns, as `acknowledge_many` takes them, the answers of those no longer held (a
    newer desired state, a drift a reconcile recorded): they are recorded the general way, a compare-and-set
    on the pushed sequence as any acknowledgement. One held at another sequence than the pushed one holds a
    newer state the channel acknowledged since; the general way would write nothing for it either (its
    desired sequence moved on, and its acknowledged one is newer than the answer's).

    One statement per channel reads the listings not held in the range of SKUs the answers span (in a
    resync, those it put back to pending: few), not each answered listing."""
    if not confirmed:
        return []
    connection = await session.connection()
    by_channel: dict[str, dict[str, tuple[str, Sent, str, datetime]]] = {}
    for item in confirmed:
        by_channel.setdefault(item[0], {})[item[1].sku] = item
    moved: list[tuple[str, Sent, Held, str | None, datetime]] = []
    for channel_id, items in by_channel.items():
        parameters = {"channel_id": channel_id, "first": min(items), "last": max(items)}
        for (sku,) in await connection.execute(_NOT_HELD_BETWEEN, parameters):
            answer = items.get(sku)
            if answer is not None:
                _, sent, text, now = answer
                moved.append((channel_id, sent, HeldText(text), sent.digest, now))
    return moved


_NOT_HELD_BETWEEN = select(_LISTINGS.c.sku).where(
    _LISTINGS.c.channel_id == bindparam("channel_id"),
    _LISTINGS.c.sku >= bindparam("first"),
    _LISTINGS.c.sku <= bindparam("last"),
    not_(held(_LISTINGS)),
)


# The acknowledgements that match what was pushed, of every push of an outcome round, set-based: the
# acknowledged state is the listing's own desired state, copied column to column, since the channel answered
# exactly what was pushed at that sequence. Each row is the same compare-and-set as before: desired_seq
# still the pushed one, no newer answer recorded. On PostgreSQL the rows travel as one JSON array parameter
# ([[channel id, SKU, seq, status, time of the answer], ...]) unpacked by jsonb_array_elements, and RETURNING
# names the listings it moved. On SQLite they are one executemany of `_ACK_MATCH_SQLITE` in the driver (its
# statement prepared once, each row's few values bound: cheaper than json_each extracting every value from
# the text, and no JSON to encode); the rows it moved are known by their count, and only when some did not
# move are the pushed sequences read back. The others go the general way.
_ACK_MATCH_SQLITE = """
        UPDATE listings SET acked = desired, acked_hash = desired_hash,
            acked_seq = ?1, acked_at = ?2, updated_at = ?2, status = ?3, last_error = NULL
        WHERE channel_id = ?4 AND sku = ?5 AND desired_seq = ?1 AND acked_seq <= ?1"""
_ACK_MATCHES = {
    "postgresql": """
        UPDATE listings SET acked = listings.desired, acked_hash = listings.desired_hash,
            acked_seq = v.seq, acked_at = v.at, updated_at = v.at, status = v.status, last_error = NULL
        FROM (SELECT e->>0 AS channel_id, e->>1 AS sku, CAST(e->>2 AS integer) AS seq, e->>3 AS status,
                     CAST(e->>4 AS timestamptz) AS at
              FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS e) AS v
        WHERE listings.channel_id = v.channel_id AND listings.sku = v.sku
          AND listings.desired_seq = v.seq AND listings.acked_seq <= v.seq
        RETURNING listings.channel_id, listings.sku""",
}


def _moments(connection: AsyncConnection) -> Any:
    """A function giving a moment as a `_ACK_MATCHES` row carries it: on SQLite the text the column
    stores (its type's own bind processing), on PostgreSQL ISO 8601 with the offset."""
    dialect = connection.dialect
    if dialect.name != "sqlite":
        return datetime.isoformat
    column_type: Any = Listing.__table__.c.acked_at.type  # type: ignore[attr-defined]
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else str


async def acknowledge_many(
    session: AsyncSession, *, answers: Sequence[tuple[str, Sent, Held, str | None, datetime]]
) -> None:
    """Record what channels say they hold after pushes (channel id, listing as pushed, state held, its
    `state_hash`, time of the answer), for many listings of any channels. A listing still at the pushed
    sequence takes the answer as its acknowledged state and becomes in_sync (or unpublished) when the
    answer is what was pushed, drifted when not: a compare-and-set on desired_seq. A listing whose
    desired state moved on meanwhile keeps its status (pending) and only records the answer, unless it
    holds a newer answer already.

    The common case, an answer equal to what was pushed, is set-based for all of them (`_ACK_MATCHES`,
    `_ACK_MATCH_SQLITE`: the held state not encoded again; a listing answered twice takes a second
    statement); the rest (drifted answers, listings whose desired state moved on) is two executemany
    statements over those rows only."""
    if not answers:
        return
    connection = await session.connection()
    sqlite = connection.dialect.name == "sqlite"
    statement = _ACK_MATCHES.get(connection.dialect.name)
    set_based = sqlite or statement is not None
    first: dict[tuple[str, str], tuple[str, Sent, Held, str | None, datetime]] = {}
    batches = [first]  # a listing answered twice goes to a later batch (each batch names a listing once)
    rest: list[tuple[str, Sent, Held, str | None, datetime]] = []
    for answer in answers:
        channel_id, sent, _, digest, _ = answer
        if not set_based or digest != sent.digest or digest is None:
            rest.append(answer)
            continue
        key = (channel_id, sent.sku)
        if key not in first:
            first[key] = answer
            continue
        batch = next((batch for batch in batches if key not in batch), None)
        if batch is None:
            batches.append(batch := {})
        batch[key] = answer
    moments: dict[datetime, Any] = {}  # the answers of one push share their time: converted once
    convert = _moments(connection)
    for batch in batches:
        if not batch:
            continue
        values = []
        for channel_id, sent, _, _, now in batch.values():
            moment = moments.get(now)
            if moment is None:
                moment = moments[now] = convert(now)
            status = "in_sync" if sent.publishable else "unpublished"
            values.append((sent.seq, moment, status, channel_id, sent.sku))
        if sqlite:
            moved_count = (await connection.exec_driver_sql(_ACK_MATCH_SQLITE, values)).rowcount
            if moved_count < len(batch):  # some moved on meanwhile (or hold a newer answer): the general way
                rest += await _not_at_pushed_seq(connection, batch)
            continue
        assert statement is not None
        rows = json.dumps([[c, k, q, st, m] for q, m, st, c, k in values], separators=(",", ":"))
        moved = await connection.execute(text(statement).bindparams(bindparam("rows", rows)))
        done = {(row[0], row[1]) for row in moved.all()}
        if len(done) < len(batch):  # some moved on meanwhile (or hold a newer answer): the general way
            rest += [answer for key, answer in batch.items() if key not in done]
    if rest:
        await _acknowledge_rows(connection, rest)


async def _not_at_pushed_seq(
    connection: AsyncConnection, batch: Mapping[tuple[str, str], tuple[str, Sent, Held, str | None, datetime]]
) -> list[tuple[str, Sent, Held, str | None, datetime]]:
    """The answers of `batch` that `_ACK_MATCH_SQLITE` did not take, in the same transaction right after it:
    those whose listing is no longer at the pushed sequence (a listing it took is at it, acknowledged;
    one whose desired state moved on, or that holds a newer answer, has a greater desired_seq)."""
    table = _LISTINGS
    by_channel: dict[str, list[str]] = {}
    for channel_id, sku in batch:
        by_channel.setdefault(channel_id, []).append(sku)
    at: dict[tuple[str, str], int] = {}
    for channel_id, skus in by_channel.items():
        rows = await connection.execute(
            select(table.c.sku, table.c.desired_seq).where(
                table.c.channel_id == channel_id, table.c.sku.in_(skus)
            )
        )
        at.update(((channel_id, sku), seq) for sku, seq in rows)
    return [answer for key, answer in batch.items() if at.get(key) != answer[1].seq]


async def _acknowledge_rows(
    connection: AsyncConnection,
    answers: Sequence[tuple[str, Sent, Held, str | None, datetime]],
) -> None:
    """`acknowledge_many` for any answers, the held state bound per row: two executemany statements."""
    rows = []
    for channel_id, sent, held, digest, now in answers:
        matches = digest == sent.digest
        rows.append(
            {
                "b_channel": channel_id,
                "b_sku": sent.sku,
                "b_seq": sent.seq,
                "b_acked": json.loads(held) if isinstance(held, HeldText) else held,
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
    pushed sequence (a resync's push of a listing the channel held, `Sent.confirm`: still held at it), in
    one statement each: a compare-and-set on that sequence and status."""
    if not failures:
        return
    pending = [failure for failure in failures if not failure[1].confirm]
    confirmed = [failure for failure in failures if failure[1].confirm]
    for rows, still in ((pending, col(Listing.status) == "pending"), (confirmed, held(_LISTINGS))):
        if rows:
            await _fail(session, rows, still)


async def _fail(
    session: AsyncSession, failures: Sequence[tuple[str, Sent, str, datetime]], still: Any
) -> None:
    statement = (
        update(Listing)
        .where(
            col(Listing.channel_id) == bindparam("b_channel"),
            col(Listing.sku) == bindparam("b_sku"),
            col(Listing.desired_seq) == bindparam("b_seq"),
            still,
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
