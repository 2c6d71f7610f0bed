"""Folding tracked storefront events (ecom.activity.v1) into raw events, sessions, identity links and the
rollups, a consumer batch at a time.

- One raw event per message id: a message id already stored (a client retry, a redelivery) is skipped.
- Consent: events of a customer who withdrew analytics consent lose their customer and anonymous ids
  (`strip`) or are discarded (`drop`).
- Identity stitching: an event carrying both an anonymous id and a customer id links them (first link
  wins); events with only the anonymous id, before or after, belong to that customer.
- Sessions: the earliest event sets a session's day, channel and campaign; the session's contribution to
  `rollup_daily_channel` moves by the difference when a late event changes it.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, NamedTuple, NotRequired

from prometheus_client import Counter, Gauge
from pydantic import ConfigDict, StringConstraints, ValidationError, with_config
from pydantic.types import Strict
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from typing_extensions import TypedDict

from analytics_service.warehouse import bulk, customers, orders, rollups
from analytics_service.warehouse.models import (
    NO_LOCATION,
    ActivityEvent,
    IdentityLink,
    OrderFact,
    SessionFact,
)
from contracts import CloudEvent
from contracts.catalog.activity import ACTIVITY_NAMES, ActivityName, ActivityTracked
from servicekit.metrics import increment_on_commit

EVENTS_INGESTED = Counter("analytics_events_ingested_total", "Tracked events stored", ["event"])
EVENTS_SKIPPED = Counter(
    "analytics_events_skipped_total",
    "Tracked events not stored by the consumer, by reason (duplicate message id, consent)",
    ["reason"],
)
ROLLUP_LAG = Gauge(
    "analytics_rollup_lag_seconds",
    "Seconds between the track API accepting the newest event of the last folded batch and its rollups "
    "committing",
)
LAST_FOLD = Gauge("analytics_rollup_last_fold_timestamp_seconds", "When the rollups last folded a batch")

PRODUCT_COUNTS = {"Product Viewed": "views", "Product Added": "adds", "Product Removed": "removes"}
LOOKUP_CHUNK = 1000  # ids per IN (...): a consumer batch (at most 500 events) in one statement
ACTIVITY_TABLE: Table = ActivityEvent.__table__  # type: ignore[attr-defined]
LINK_TABLE: Table = IdentityLink.__table__  # type: ignore[attr-defined]
ORDER_TABLE: Table = OrderFact.__table__  # type: ignore[attr-defined]
SESSION_TABLE: Table = SessionFact.__table__  # type: ignore[attr-defined]
SESSION_COLUMNS = tuple(column.name for column in SESSION_TABLE.columns)
assert SESSION_COLUMNS == (  # the order `_fold_sessions` writes them in
    "session_id",
    "day",
    "started_at",
    "channel",
    "campaign",
    "customer_id",
    "anonymous_id",
    "events",
    "page_views",
    "product_views",
    "viewed",
    "added",
    "checkout",
    "purchased",
), SESSION_COLUMNS


@dataclass(slots=True)
class SessionState:
    """A row of `activity_sessions` while a batch folds into it (plain attributes: cheap to change)."""

    session_id: str
    day: date
    started_at: datetime
    channel: str
    campaign: str
    customer_id: str | None = None
    anonymous_id: str | None = None
    events: int = 0
    page_views: int = 0
    product_views: int = 0
    viewed: bool = False
    added: bool = False
    checkout: bool = False
    purchased: bool = False


class Tracked(NamedTuple):
    """An ecom.activity.tracked.v1 payload as the fold reads it (the fields of `ActivityTracked`)."""

    message_id: str
    event: str
    timestamp: datetime
    received_at: datetime
    session_id: str | None
    anonymous_id: str | None
    customer_id: str | None
    channel: str
    campaign: str
    properties: dict[str, Any]
    # `timestamp` as SQLite stores it (`bulk.sqlite_moment`), when the payload gave it as UTC text: cut
    # from that text instead of formatting the datetime again (None otherwise: formatted when stored)
    stored_timestamp: str | None = None


_FIELDS = frozenset(ActivityTracked.model_fields)
_NAMES = frozenset(ACTIVITY_NAMES)
# RFC 3339 with an offset, as the track API's envelopes carry it: read the same by pydantic and by
# datetime.fromisoformat (anything else goes through the model)
_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)\Z")


def _moment(value: Any) -> datetime | None:
    if type(value) is not str or _MOMENT.match(value) is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _stored_text(value: str) -> str | None:
    """SQLite's stored form of a moment (`bulk.sqlite_moment`: UTC, `YYYY-MM-DD HH:MM:SS.ffffff`) cut from
    its text, which `_MOMENT` matched and `datetime.fromisoformat` read; None unless its offset is UTC."""
    if value[-1] == "Z":
        body = value[:-1]
    elif value[-6:] in ("+00:00", "-00:00"):
        body = value[:-6]
    else:
        return None
    if len(body) == 19:  # no fraction
        return f"{body[:10]} {body[11:]}.000000"
    return f"{body[:10]} {body[11:19]}.{body[20:]:0<6}"


def _short(value: Any, limit: int) -> bool:
    return value is None or (type(value) is str and len(value) <= limit)


def parse_tracked(data: Any, received: dict[str, datetime] | None = None) -> Tracked:
    """The payload of an ecom.activity.tracked.v1 event; raises pydantic's ValidationError when it is not
    a valid `ActivityTracked`. Payloads in the shape the track API publishes are checked field by field
    here (the model's rules: names, types, lengths, no unknown fields), which costs a fraction of a model
    validation; anything else (another datetime form, a field of the wrong type) is left to the model,
    which accepts or rejects it with its own rules and message. `received`: the `received_at` texts read
    so far and their moments (the track API stamps all the events of a request with one), kept across
    the calls of a batch so each text is read once."""
    if type(data) is dict and data.keys() <= _FIELDS:
        get = data.get
        message_id, event, channel = get("message_id"), get("event"), get("channel")
        campaign, properties = get("campaign", ""), get("properties", {})
        session_id, anonymous_id, customer_id = get("session_id"), get("anonymous_id"), get("customer_id")
        timestamp_text, received_text = get("timestamp"), get("received_at")
        timestamp = _moment(timestamp_text)
        if received is None or type(received_text) is not str:
            received_at = _moment(received_text)
        else:
            received_at = received.get(received_text)
            if received_at is None:
                received_at = _moment(received_text)
                if received_at is not None:
                    received[received_text] = received_at
        if (
            type(message_id) is str
            and 0 < len(message_id) <= 100
            and type(event) is str
            and event in _NAMES
            and timestamp is not None
            and received_at is not None
            and type(channel) is str
            and len(channel) <= 50
            and type(campaign) is str
            and len(campaign) <= 100
            and type(properties) is dict
            and _short(session_id, 100)
            and _short(anonymous_id, 100)
            and _short(customer_id, 64)
        ):
            return Tracked(
                message_id,
                event,
                timestamp,
                received_at,
                session_id,
                anonymous_id,
                customer_id,
                channel,
                campaign,
                properties,
                _stored_text(timestamp_text),  # type: ignore[arg-type]  # a str: _moment read it
            )
    model = ActivityTracked.model_validate(data)
    return Tracked(
        model.message_id,
        model.event,
        model.timestamp,
        model.received_at,
        model.session_id,
        model.anonymous_id,
        model.customer_id,
        model.channel,
        model.campaign,
        model.properties,
    )


# --- one decoding pass for the consumer ---------------------------------------------------------------
#
# The consumer decodes every record's envelope (`CloudEvent`) and the fold then checked the payload field
# by field (`parse_tracked`): two passes over each event. `decode_record` decodes an envelope of
# ecom.activity.tracked.v1 whose payload has the track API's shape in one pydantic-core pass into a
# `TrackedEnvelope`, a CloudEvent whose `data` already meets `parse_tracked`'s fast-path rules; the fold
# then only reads the moments (`_checked`). Any other record (another type, a payload of another shape,
# a malformed one) is decoded as `CloudEvent.from_json_bytes` decodes it and judged as before.

_MOMENT_TEXT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)


_Text100 = Annotated[str, StringConstraints(strict=True, max_length=100)]
_Text64 = Annotated[str, StringConstraints(strict=True, max_length=64)]
_Text50 = Annotated[str, StringConstraints(strict=True, max_length=50)]
_MessageId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100)]
_MomentText = Annotated[str, StringConstraints(strict=True, pattern=_MOMENT_TEXT)]


@with_config(ConfigDict(extra="forbid"))
class TrackedPayload(TypedDict):
    """`ActivityTracked` as the track API publishes it (moments as RFC 3339 text with an offset)."""

    message_id: _MessageId
    event: ActivityName
    timestamp: _MomentText
    received_at: _MomentText
    session_id: NotRequired[_Text100 | None]
    anonymous_id: NotRequired[_Text100 | None]
    customer_id: NotRequired[_Text64 | None]
    channel: _Text50
    campaign: NotRequired[_Text100]
    properties: NotRequired[Annotated[dict[str, Any], Strict()]]


class TrackedEnvelope(CloudEvent):
    """An ecom.activity.tracked.v1 envelope whose payload was checked in the same pass (`decode_record`)."""

    type: Literal["ecom.activity.tracked.v1"]
    data: TrackedPayload  # type: ignore[assignment]


_decode_tracked = TrackedEnvelope.model_validate_json
fromisoformat = datetime.fromisoformat


def decode_record(raw: bytes) -> CloudEvent:
    """The activity consumer's `ConsumerSpec.decode`: a `TrackedEnvelope` when the record is a tracked
    event in the track API's shape, else the envelope as `CloudEvent.from_json_bytes` reads it (raising
    its ValidationError for a record that is not a CloudEvent)."""
    try:
        return _decode_tracked(raw)
    except ValidationError:
        return CloudEvent.from_json_bytes(raw)


def _checked(data: Any, received: dict[str, datetime]) -> Tracked:
    """`parse_tracked` of a `TrackedEnvelope`'s payload, whose fields already meet its rules but for the
    moments' values (read here; one that `datetime.fromisoformat` rejects goes to `parse_tracked`)."""
    timestamp_text, received_text = data["timestamp"], data["received_at"]
    received_at = received.get(received_text)
    try:
        timestamp = fromisoformat(timestamp_text)
        if received_at is None:
            received_at = received[received_text] = fromisoformat(received_text)
    except ValueError:
        return parse_tracked(data, received)
    get = data.get
    return Tracked(
        data["message_id"],
        data["event"],
        timestamp,
        received_at,
        get("session_id"),
        get("anonymous_id"),
        get("customer_id"),
        data["channel"],
        get("campaign", ""),
        get("properties", {}),
        _stored_text(timestamp_text),
    )


@dataclass(frozen=True)
class IngestRules:
    reporting_currency: str
    consent_mode: str  # strip | drop


def _minor(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or abs(amount) > Decimal("9999999999.99"):
        return None
    return int((amount * 100).to_integral_value())


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


_RAW_COLUMNS = (
    "message_id",
    "event",
    "occurred_at",
    "received_at",
    "day",
    "session_id",
    "anonymous_id",
    "customer_id",
    "original_customer_id",
    "channel",
    "campaign",
    "sku",
    "order_id",
    "revenue_minor",
    "properties",
)
_INSERT_RAW: dict[str, Any] = {
    "sqlite": sqlite_insert(ACTIVITY_TABLE).on_conflict_do_nothing(index_elements=["message_id"]),
    "postgresql": pg_insert(ACTIVITY_TABLE).on_conflict_do_nothing(index_elements=["message_id"]),
}


async def _store_raw(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """The raw events, one executemany (values in SQLite's stored forms there, see `bulk`)."""
    if not bulk.is_sqlite(session):
        await bulk.executemany(
            session,
            _INSERT_RAW["postgresql"],
            _RAW_COLUMNS,
            [tuple(row[c] for c in _RAW_COLUMNS) for row in rows],
        )
        return
    moment, dumps = bulk.sqlite_moment, json.dumps
    received: dict[datetime, str] = {}  # the track API stamps a request's events with one moment
    days = bulk.DayTexts()
    values = []
    for row in rows:
        at = row["received_at"]
        received_text = received.get(at)
        if received_text is None:
            received_text = received[at] = moment(at)
        props = row["properties"]
        values.append(
            (
                row["message_id"],
                row["event"],
                row["stored_occurred_at"] or moment(row["occurred_at"]),
                received_text,
                days[row["day"]],
                row["session_id"],
                row["anonymous_id"],
                row["customer_id"],
                row["original_customer_id"],
                row["channel"],
                row["campaign"],
                row["sku"],
                row["order_id"],
                row["revenue_minor"],
                dumps(props) if props else "{}",
            )
        )
    await bulk.executemany(session, _INSERT_RAW["sqlite"], _RAW_COLUMNS, values, converted=True)


async def fold(session: AsyncSession, events: Sequence[CloudEvent], rules: IngestRules) -> None:
    """Store a batch of ecom.activity.tracked.v1 events and move the rollups by what they change."""
    tracked: dict[str, Tracked] = {}
    received: dict[str, datetime] = {}
    for event in events:
        if type(event) is TrackedEnvelope:  # decoded and checked in one pass by the consumer
            data = _checked(event.data, received)
        else:
            data = parse_tracked(event.data, received)
        tracked.setdefault(data.message_id, data)
    if not tracked:
        return
    known = {
        row[0] for row in await bulk.select_in(session, ACTIVITY_TABLE, ["message_id"], "message_id", tracked)
    }
    fresh = [t for mid, t in tracked.items() if mid not in known]
    increment_on_commit(session, EVENTS_SKIPPED.labels("duplicate"), len(events) - len(fresh))
    if not fresh:
        return
    fresh.sort(key=lambda t: (t.timestamp, t.message_id))
    # Identity: the links these events make or use, and who owns each event now.
    links, owner_of, blocked = await _identities(session, fresh)

    rows: list[dict[str, Any]] = []
    now = datetime.now(tz=fresh[0].received_at.tzinfo)
    first_seen: dict[str, datetime] = {}
    dropped = 0
    drop = rules.consent_mode == "drop"
    for t in fresh:
        anonymous = t.anonymous_id
        stated_id = t.customer_id or (links.get(anonymous) if anonymous else None)
        owner = None
        if stated_id is not None:
            owner = owner_of.get(stated_id)
            if blocked and (stated_id in blocked or owner in blocked):
                if drop:
                    dropped += 1
                    continue
                stated_id = owner = anonymous = None
            elif owner is not None:
                seen = first_seen.get(owner)
                if seen is None or t.timestamp < seen:
                    first_seen[owner] = t.timestamp
        props = t.properties
        sku = props.get("sku")
        order_id = props.get("order_id")
        revenue = props.get("revenue", props.get("total"))
        rows.append(
            {
                "message_id": t.message_id,
                "event": t.event,
                "occurred_at": t.timestamp,
                "stored_occurred_at": t.stored_timestamp,
                "received_at": t.received_at,
                "day": t.timestamp.date(),
                "session_id": t.session_id,
                "anonymous_id": anonymous,
                "customer_id": owner,
                "original_customer_id": stated_id if owner != stated_id else None,
                "channel": t.channel,
                "campaign": t.campaign,
                "sku": _text(sku, 100) if sku is not None else None,
                "order_id": _text(order_id, 64) if order_id is not None else None,
                "revenue_minor": _minor(revenue) if revenue is not None else None,
                "properties": props,
            }
        )
    if dropped:
        increment_on_commit(session, EVENTS_SKIPPED.labels("consent"), dropped)
    if not rows:
        return
    await _store_raw(session, rows)
    await customers.note_first_seen(session, first_seen)

    delta, moved, attribution = await _fold_sessions(session, rows)
    for row in rows:
        counter = PRODUCT_COUNTS.get(row["event"])
        if counter and row["sku"]:
            delta.product[(row["day"], row["sku"], NO_LOCATION)][counter] += 1
    await rollups.apply(session, delta)

    await orders.reattribute_sessions(session, moved, reporting_currency=rules.reporting_currency)
    completed: dict[str, tuple[str | None, str, str]] = {}
    for row in rows:
        if row["event"] == "Order Completed" and row["order_id"] and row["order_id"] not in completed:
            sid = row["session_id"]
            channel, campaign = attribution.get(sid, (row["channel"], row["campaign"]))
            completed[row["order_id"]] = (sid, channel, campaign)
    await _attribute_orders(session, completed, rules)
    for name, count in Tally(row["event"] for row in rows).items():
        increment_on_commit(session, EVENTS_INGESTED.labels(name), count)
    newest = max(row["received_at"] for row in rows)
    ROLLUP_LAG.set(max(0.0, (now - newest).total_seconds()))
    LAST_FOLD.set(time.time())


async def _attribute_orders(
    session: AsyncSession, completed: dict[str, tuple[str | None, str, str]], rules: IngestRules
) -> None:
    """Orders named by Order Completed events take their session's channel and campaign. An order not
    known yet (its ecom.order.placed.v1 comes later) is started as a row that counts nowhere, in one
    INSERT; a known order moves its rollup contribution (`orders.attribute`)."""
    if not completed:
        return
    known = {
        row[0] for row in await bulk.select_in(session, ORDER_TABLE, ["order_id"], "order_id", completed)
    }
    fresh = [
        {"order_id": order_id, "channel": channel, "campaign": campaign, "session_id": sid}
        for order_id, (sid, channel, campaign) in completed.items()
        if order_id not in known
    ]
    if fresh:
        statement = _insert(session)(ORDER_TABLE).on_conflict_do_nothing(index_elements=["order_id"])
        await (await session.connection()).execute(statement, fresh)
    for order_id in sorted(known):
        sid, channel, campaign = completed[order_id]
        await orders.attribute(
            session,
            order_id,
            session_id=sid,
            channel=channel,
            campaign=campaign,
            reporting_currency=rules.reporting_currency,
        )


async def _identities(
    session: AsyncSession, fresh: list[Tracked]
) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """Anonymous id -> stated customer id for every anonymous id in the batch (links held, plus the ones
    this batch makes: earliest event first, the first link of an anonymous id wins); each stated customer
    id -> the customer owning its data now; the customers among them who withdrew analytics consent.
    Events stored before a new link that have only its anonymous id are given the customer."""
    anonymous_ids = list({t.anonymous_id for t in fresh if t.anonymous_id})
    found = await bulk.select_in(
        session, LINK_TABLE, ["anonymous_id", "customer_id"], "anonymous_id", anonymous_ids
    )
    links: dict[str, str] = {str(anonymous): str(customer) for anonymous, customer in found}
    stated = {t.customer_id for t in fresh if t.customer_id} | set(links.values())
    owner_of = await customers.survivors(session, stated)
    blocked = await customers.withdrawn(session, set(owner_of) | set(owner_of.values()))
    new: dict[str, tuple[str, datetime]] = {}
    for t in fresh:
        if t.anonymous_id and t.customer_id and t.anonymous_id not in links and t.anonymous_id not in new:
            new[t.anonymous_id] = (t.customer_id, t.timestamp)
    new = {anonymous: made for anonymous, made in new.items() if made[0] not in blocked}
    if new:
        connection = await session.connection()
        await connection.execute(
            _insert(session)(LINK_TABLE).on_conflict_do_nothing(index_elements=["anonymous_id"]),
            [
                {
                    "anonymous_id": anonymous,
                    "customer_id": owner_of[cid],
                    "original_customer_id": cid if owner_of[cid] != cid else None,
                    "linked_at": at,
                }
                for anonymous, (cid, at) in new.items()
            ],
        )
        stitched = [
            {
                "link_anonymous": anonymous,
                "link_owner": owner_of[cid],
                "link_original": cid if owner_of[cid] != cid else None,
            }
            for anonymous, (cid, _) in new.items()
        ]
        await connection.execute(_STITCH_EVENTS, stitched)
        await connection.execute(_STITCH_SESSIONS, stitched)
        links.update({anonymous: cid for anonymous, (cid, _) in new.items()})
    return links, owner_of, blocked


_STITCH_EVENTS = (
    update(ACTIVITY_TABLE)
    .where(
        ACTIVITY_TABLE.c.anonymous_id == bindparam("link_anonymous"), ACTIVITY_TABLE.c.customer_id.is_(None)
    )
    .values(customer_id=bindparam("link_owner"), original_customer_id=bindparam("link_original"))
)
_STITCH_SESSIONS = (
    update(SESSION_TABLE)
    .where(SESSION_TABLE.c.anonymous_id == bindparam("link_anonymous"), SESSION_TABLE.c.customer_id.is_(None))
    .values(customer_id=bindparam("link_owner"))
)


_SESSION_INSERT = SESSION_TABLE.insert()
_SESSION_UPDATE = (
    SESSION_TABLE.update()
    .where(SESSION_TABLE.c.session_id == bindparam("key"))
    .values({name: bindparam(name) for name in SESSION_COLUMNS if name != "session_id"})
)
_SESSION_UPDATE_COLUMNS = (*(name for name in SESSION_COLUMNS if name != "session_id"), "key")
_SESSION_FLAGS = ("viewed", "added", "checkout", "purchased")


async def _held_sessions(session: AsyncSession, ids: list[str]) -> dict[str, SessionState]:
    """The `activity_sessions` rows of these ids. On SQLite read at the driver and turned into Python
    values as the model's types would (day, UTC moment, flags)."""
    held: dict[str, SessionState] = {}
    if not bulk.is_sqlite(session):
        for start in range(0, len(ids), LOOKUP_CHUNK):
            found = await session.execute(
                select(SESSION_TABLE).where(SESSION_TABLE.c.session_id.in_(ids[start : start + LOOKUP_CHUNK]))
            )
            for mapping in found.mappings():
                held[mapping["session_id"]] = SessionState(**mapping)
        return held
    for values in await bulk.select_in(session, SESSION_TABLE, SESSION_COLUMNS, "session_id", ids):
        fact = SessionState(**dict(zip(SESSION_COLUMNS, values, strict=True)))
        fact.day = date.fromisoformat(values[1])
        fact.started_at = bulk.sqlite_read_moment(values[2])
        for flag in _SESSION_FLAGS:
            setattr(fact, flag, bool(getattr(fact, flag)))
        held[fact.session_id] = fact
    return held


async def _fold_sessions(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> tuple[rollups.Contribution, dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """Fold the rows into their sessions. Returns the rollup difference, the held sessions whose channel
    or campaign moved, and every touched session's (channel, campaign)."""
    by_session: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["session_id"]:
            by_session.setdefault(row["session_id"], []).append(row)
    delta = rollups.Contribution()
    moved: dict[str, tuple[str, str]] = {}
    attribution: dict[str, tuple[str, str]] = {}
    if not by_session:
        return delta, moved, attribution
    held = await _held_sessions(session, list(by_session))
    inserted: list[tuple[Any, ...]] = []
    changed: list[tuple[Any, ...]] = []
    sqlite = bulk.is_sqlite(session)
    count_event = rollups.count_event
    days = bulk.DayTexts()
    for session_id, session_rows in by_session.items():
        held_fact = held.get(session_id)
        before = None
        started_text = None  # the start as SQLite stores it, when an event of this batch gave it as such
        if held_fact is not None:
            fact = held_fact
            before = (fact.channel, fact.campaign)
            delta.add(rollups.session_contribution(fact), -1)
        else:
            first = session_rows[0]
            fact = SessionState(
                session_id=session_id,
                day=first["day"],
                started_at=first["occurred_at"],
                channel=first["channel"],
                campaign=first["campaign"],
            )
            started_text = first["stored_occurred_at"]
        for row in session_rows:
            if row["occurred_at"] < fact.started_at:
                fact.started_at, fact.day = row["occurred_at"], row["day"]
                fact.channel, fact.campaign = row["channel"], row["campaign"]
                started_text = row["stored_occurred_at"]
            if fact.customer_id is None and row["customer_id"]:
                fact.customer_id = row["customer_id"]
            if fact.anonymous_id is None and row["anonymous_id"]:
                fact.anonymous_id = row["anonymous_id"]
            count_event(fact, row["event"])
        rollups.session_contribution(fact, delta)
        attribution[session_id] = (fact.channel, fact.campaign)
        if before is not None and before != attribution[session_id]:
            moved[session_id] = attribution[session_id]
        values = (
            days[fact.day] if sqlite else fact.day,
            (started_text or bulk.sqlite_moment(fact.started_at)) if sqlite else fact.started_at,
            fact.channel,
            fact.campaign,
            fact.customer_id,
            fact.anonymous_id,
            fact.events,
            fact.page_views,
            fact.product_views,
            int(fact.viewed) if sqlite else fact.viewed,
            int(fact.added) if sqlite else fact.added,
            int(fact.checkout) if sqlite else fact.checkout,
            int(fact.purchased) if sqlite else fact.purchased,
        )
        if held_fact is not None:
            changed.append((*values, session_id))
        else:
            inserted.append((session_id, *values))
    await bulk.executemany(session, _SESSION_INSERT, SESSION_COLUMNS, inserted, converted=sqlite)
    await bulk.executemany(session, _SESSION_UPDATE, _SESSION_UPDATE_COLUMNS, changed, converted=sqlite)
    return delta, moved, attribution
