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

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.warehouse import customers, orders, rollups
from analytics_service.warehouse.models import (
    NO_LOCATION,
    ActivityEvent,
    IdentityLink,
    OrderFact,
    SessionFact,
)
from contracts import CloudEvent
from contracts.catalog.activity import ActivityTracked
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


@dataclass
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


async def fold(session: AsyncSession, events: Sequence[CloudEvent], rules: IngestRules) -> None:
    """Store a batch of ecom.activity.tracked.v1 events and move the rollups by what they change."""
    tracked: dict[str, ActivityTracked] = {}
    for event in events:
        data = ActivityTracked.model_validate(event.data)
        tracked.setdefault(data.message_id, data)
    if not tracked:
        return
    known: set[str] = set()
    ids = list(tracked)
    for start in range(0, len(ids), LOOKUP_CHUNK):
        known.update(
            (
                await session.scalars(
                    select(col(ActivityEvent.message_id)).where(
                        col(ActivityEvent.message_id).in_(ids[start : start + LOOKUP_CHUNK])
                    )
                )
            ).all()
        )
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
    for t in fresh:
        stated_id = t.customer_id or (links.get(t.anonymous_id) if t.anonymous_id else None)
        owner = owner_of.get(stated_id) if stated_id else None
        anonymous = t.anonymous_id
        if stated_id is not None and (stated_id in blocked or owner in blocked):
            if rules.consent_mode == "drop":
                increment_on_commit(session, EVENTS_SKIPPED.labels("consent"))
                continue
            stated_id = owner = anonymous = None
        props = t.properties
        if owner is not None:
            first_seen[owner] = min(first_seen.get(owner, t.timestamp), t.timestamp)
        rows.append(
            {
                "message_id": t.message_id,
                "event": t.event,
                "occurred_at": t.timestamp,
                "received_at": t.received_at,
                "day": t.timestamp.date(),
                "session_id": t.session_id,
                "anonymous_id": anonymous,
                "customer_id": owner,
                "original_customer_id": stated_id if owner != stated_id else None,
                "channel": t.channel,
                "campaign": t.campaign,
                "sku": _text(props.get("sku"), 100),
                "order_id": _text(props.get("order_id"), 64),
                "revenue_minor": _minor(props.get("revenue", props.get("total"))),
                "properties": props,
            }
        )
    if not rows:
        return
    connection = await session.connection()
    # executemany of one statement (compiled once), not a multi-row VALUES compiled per batch
    await connection.execute(
        _insert(session)(ACTIVITY_TABLE).on_conflict_do_nothing(index_elements=["message_id"]), rows
    )
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
    for row in rows:
        increment_on_commit(session, EVENTS_INGESTED.labels(row["event"]))
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
    known = set(
        (
            await session.scalars(
                select(col(OrderFact.order_id)).where(col(OrderFact.order_id).in_(list(completed)))
            )
        ).all()
    )
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
    session: AsyncSession, fresh: list[ActivityTracked]
) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """Anonymous id -> stated customer id for every anonymous id in the batch (links held, plus the ones
    this batch makes: earliest event first, the first link of an anonymous id wins); each stated customer
    id -> the customer owning its data now; the customers among them who withdrew analytics consent.
    Events stored before a new link that have only its anonymous id are given the customer."""
    anonymous_ids = list({t.anonymous_id for t in fresh if t.anonymous_id})
    links: dict[str, str] = {}
    if anonymous_ids:
        found = await session.execute(
            select(LINK_TABLE.c.anonymous_id, LINK_TABLE.c.customer_id).where(
                LINK_TABLE.c.anonymous_id.in_(anonymous_ids)
            )
        )
        links = {str(anonymous): str(customer) for anonymous, customer in found.all()}
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
    held: dict[str, SessionState] = {}
    ids = list(by_session)
    for start in range(0, len(ids), LOOKUP_CHUNK):
        found = await session.execute(
            select(SESSION_TABLE).where(SESSION_TABLE.c.session_id.in_(ids[start : start + LOOKUP_CHUNK]))
        )
        for mapping in found.mappings():
            held[mapping["session_id"]] = SessionState(**mapping)
    inserted: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for session_id, session_rows in by_session.items():
        held_fact = held.get(session_id)
        before = None
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
        for row in session_rows:
            if row["occurred_at"] < fact.started_at:
                fact.started_at, fact.day = row["occurred_at"], row["day"]
                fact.channel, fact.campaign = row["channel"], row["campaign"]
            if fact.customer_id is None and row["customer_id"]:
                fact.customer_id = row["customer_id"]
            if fact.anonymous_id is None and row["anonymous_id"]:
                fact.anonymous_id = row["anonymous_id"]
            rollups.count_event(fact, row["event"])
        rollups.session_contribution(fact, delta)
        attribution[session_id] = (fact.channel, fact.campaign)
        if before is not None and before != attribution[session_id]:
            moved[session_id] = attribution[session_id]
        values = {name: getattr(fact, name) for name in SESSION_COLUMNS}
        (changed if held_fact is not None else inserted).append(values)
    connection = await session.connection()
    if inserted:
        await connection.execute(SESSION_TABLE.insert(), inserted)
    if changed:
        await connection.execute(
            SESSION_TABLE.update()
            .where(SESSION_TABLE.c.session_id == bindparam("key"))
            .values({name: bindparam(name) for name in SESSION_COLUMNS if name != "session_id"}),
            [{**values, "key": values["session_id"]} for values in changed],
        )
    return delta, moved, attribution
