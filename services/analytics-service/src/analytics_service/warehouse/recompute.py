"""The rollups computed from scratch: sessions from the raw events, orders from their facts with first
orders worked out again. The oracle the incremental rollups are checked against (tests, `bench/analytics`)
and a repair tool; it scans every raw event, so no KPI query uses it."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from analytics_service.warehouse import rollups
from analytics_service.warehouse.models import (
    NO_LOCATION,
    ActivityEvent,
    OrderFact,
    OrderLineFact,
    SessionFact,
)

PRODUCT_COUNTS = {"Product Viewed": "views", "Product Added": "adds", "Product Removed": "removes"}


async def sessions_from_raw(
    connection: AsyncConnection, *, start: date | None = None, end: date | None = None
) -> dict[str, SessionFact]:
    """Every session folded again from its raw events (earliest first). With a date range, only sessions
    with an event in it are read (a session's day is that of its earliest event, so callers that filter
    by day after this still get the right sessions for days inside the range)."""
    statement = (
        select(
            col(ActivityEvent.session_id),
            col(ActivityEvent.event),
            col(ActivityEvent.occurred_at),
            col(ActivityEvent.day),
            col(ActivityEvent.channel),
            col(ActivityEvent.campaign),
        )
        .where(col(ActivityEvent.session_id).isnot(None))
        .order_by(col(ActivityEvent.occurred_at), col(ActivityEvent.message_id))
    )
    if start is not None and end is not None:
        in_range = select(col(ActivityEvent.session_id)).where(
            col(ActivityEvent.day) >= start, col(ActivityEvent.day) <= end
        )
        statement = statement.where(col(ActivityEvent.session_id).in_(in_range))
    facts: dict[str, SessionFact] = {}
    for session_id, name, occurred_at, day, channel, campaign in (await connection.execute(statement)).all():
        if session_id is None:
            continue
        fact = facts.get(session_id)
        if fact is None:
            fact = facts[session_id] = SessionFact(
                session_id=session_id, day=day, started_at=occurred_at, channel=channel, campaign=campaign
            )
        rollups.count_event(fact, name)
    return facts


async def rollups_from_scratch(
    connection: AsyncConnection, *, reporting_currency: str
) -> rollups.Contribution:
    """Both rollups, recomputed from raw events and order facts."""
    total = rollups.Contribution()
    sessions = await sessions_from_raw(connection)
    for fact in sessions.values():
        rollups.session_contribution(fact, total)
    product_rows = await connection.execute(
        select(col(ActivityEvent.day), col(ActivityEvent.sku), col(ActivityEvent.event)).where(
            col(ActivityEvent.sku).isnot(None), col(ActivityEvent.event).in_(list(PRODUCT_COUNTS))
        )
    )
    for day, sku, name in product_rows.all():
        if sku is None:
            continue
        total.product[(day, sku, NO_LOCATION)][PRODUCT_COUNTS[name]] += 1

    orders = [
        OrderFact.model_validate(dict(row._mapping))
        for row in await connection.execute(
            select(OrderFact.__table__).where(col(OrderFact.placed).is_(True))  # type: ignore[attr-defined]
        )
    ]
    lines: dict[str, list[OrderLineFact]] = defaultdict(list)
    for row in await connection.execute(select(OrderLineFact.__table__)):  # type: ignore[attr-defined]
        line = OrderLineFact.model_validate(dict(row._mapping))
        lines[line.order_id].append(line)
    first: dict[str, Any] = {}
    for order in sorted(orders, key=lambda o: (o.placed_at, o.order_id)):
        if order.customer_id and order.status not in rollups.NOT_COUNTED_STATUSES:
            first.setdefault(order.customer_id, order.order_id)
    for order in orders:
        attributed = sessions.get(order.session_id) if order.session_id else None
        if attributed is not None:
            order.channel, order.campaign = attributed.channel, attributed.campaign
        order.is_first = first.get(order.customer_id or "") == order.order_id
        rollups.order_contribution(
            order, lines[order.order_id], reporting_currency=reporting_currency, into=total
        )
    return total
