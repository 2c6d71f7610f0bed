"""Order facts from ecom.orders.v1 (placed, status changes incl. cancellations and refunds)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.warehouse import costs, customers, rollups
from analytics_service.warehouse.models import OrderFact, OrderLineFact
from contracts import CloudEvent, parse_data
from contracts.catalog.orders import OrderPlaced, OrderStatusChanged
from servicekit.db import as_utc


def to_minor(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


async def change_order(
    session: AsyncSession,
    order_id: str,
    mutate: Callable[[OrderFact], Awaitable[bool]],
    *,
    reporting_currency: str,
) -> OrderFact:
    """Load (or start) an order fact, let `mutate` change it, and move its rollup contribution by the
    difference; then refresh the customers it belonged to before and after."""
    # Locked (PostgreSQL): the activity consumer attributes orders while this one places them.
    fact = await session.get(OrderFact, order_id, with_for_update=True)
    created = fact is None
    if fact is None:
        fact = OrderFact(order_id=order_id)
        session.add(fact)
    lines = (await customers.order_lines(session, [order_id]))[order_id]
    old = rollups.order_contribution(None if created else fact, lines, reporting_currency=reporting_currency)
    before = fact.customer_id
    if not await mutate(fact):
        return fact
    await session.flush()
    lines = (await customers.order_lines(session, [order_id]))[order_id]
    delta = rollups.order_contribution(fact, lines, reporting_currency=reporting_currency)
    delta.add(old, -1)
    await rollups.apply(session, delta)
    touched = {c for c in (before, fact.customer_id) if c is not None}
    await customers.refresh(session, touched, reporting_currency=reporting_currency)
    return fact


async def on_order_placed(session: AsyncSession, event: CloudEvent, *, reporting_currency: str) -> None:
    order = parse_data(event)
    assert isinstance(order, OrderPlaced)
    # A time without an offset (a producer's naive input) is UTC, and one with an offset counts on its UTC
    # day; compared with the aware times the tables hold, a naive one would fail the event for good.
    order = order.model_copy(update={"placed_at": as_utc(order.placed_at)})
    owner = (await customers.survivors(session, [order.customer_id]))[order.customer_id]
    await customers.ensure_profiles(session, {order.customer_id: order.placed_at})

    async def place(fact: OrderFact) -> bool:
        if fact.placed:
            return False  # the same order placed twice (a new event id): the first one stands
        await session.execute(delete(OrderLineFact).where(col(OrderLineFact.order_id) == order.order_id))
        lines = [
            OrderLineFact(
                order_id=order.order_id,
                line_no=number,
                sku=line.sku,
                quantity=line.quantity,
                unit_price_minor=to_minor(line.unit_price),
            )
            for number, line in enumerate(order.lines, start=1)
        ]
        session.add_all(lines)
        fact.placed = True
        fact.order_number = order.order_number
        fact.customer_id = owner
        fact.original_customer_id = order.customer_id if owner != order.customer_id else None
        fact.sales_channel = order.channel
        fact.location_id = order.location_id
        fact.currency = order.currency
        fact.subtotal_minor = to_minor(order.subtotal)
        fact.discount_minor = to_minor(order.discount_total)
        fact.total_minor = to_minor(order.total)
        fact.placed_at = order.placed_at
        fact.day = order.placed_at.date()
        history = await costs.histories(session, {(line.sku, order.currency) for line in lines})
        costs.cost_lines(fact, lines, history)
        if fact.status_at is None or fact.status_at <= order.placed_at:
            fact.status, fact.status_at = "placed", order.placed_at
        return True

    await change_order(session, order.order_id, place, reporting_currency=reporting_currency)


async def on_order_status_changed(
    session: AsyncSession, event: CloudEvent, *, reporting_currency: str
) -> None:
    change = parse_data(event)
    assert isinstance(change, OrderStatusChanged)
    change = change.model_copy(update={"changed_at": as_utc(change.changed_at)})

    async def move(fact: OrderFact) -> bool:
        if fact.status_at is not None and change.changed_at < fact.status_at:
            return False  # an older status delivered late
        if fact.status_at == change.changed_at and fact.status == change.status:
            return False
        fact.status, fact.status_at = change.status, change.changed_at
        return True

    await change_order(session, change.order_id, move, reporting_currency=reporting_currency)


async def attribute(
    session: AsyncSession,
    order_id: str,
    *,
    session_id: str | None,
    channel: str,
    campaign: str,
    reporting_currency: str,
    force: bool = False,
) -> None:
    """Attribute an order to the channel and campaign of the session whose Order Completed event named it
    (the first such session seen); `force` re-attributes it when that session's attribution moved."""

    async def set_channel(fact: OrderFact) -> bool:
        if fact.channel is not None and not force:
            return False
        if (fact.channel, fact.campaign) == (channel, campaign):
            return False
        fact.channel, fact.campaign, fact.session_id = channel, campaign, session_id
        return True

    await change_order(session, order_id, set_channel, reporting_currency=reporting_currency)


async def reattribute_sessions(
    session: AsyncSession, moved: dict[str, tuple[str, str]], *, reporting_currency: str
) -> None:
    """Orders attributed to these sessions follow the sessions' new channel and campaign."""
    if not moved:
        return
    rows = await session.execute(
        select(col(OrderFact.order_id), col(OrderFact.session_id)).where(
            col(OrderFact.session_id).in_(list(moved))
        )
    )
    for order_id, session_id in rows.all():
        if session_id is None:
            continue
        channel, campaign = moved[session_id]
        await attribute(
            session,
            order_id,
            session_id=session_id,
            channel=channel,
            campaign=campaign,
            reporting_currency=reporting_currency,
            force=True,
        )
