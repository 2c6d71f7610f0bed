"""Keeps `known_orders` from ecom.orders.v1, so a shipment for an order customer-service never placed is
refused without a call to customer-service (which would make every 3PL webhook depend on it being up).

An order placed a moment ago may not be projected yet: the webhook then answers 422 and the partner's
retry (Standard Webhooks senders retry non-2xx answers) finds it."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import CloudEvent, parse_data
from contracts.catalog.orders import OrderPlaced, OrderStatusChanged
from sync_service.orders.models import KnownOrder


async def on_order_placed(session: AsyncSession, event: CloudEvent) -> None:
    fact = parse_data(event)
    assert isinstance(fact, OrderPlaced)
    if await session.get(KnownOrder, fact.order_id) is not None:
        return
    session.add(
        KnownOrder(
            order_id=fact.order_id,
            order_number=fact.order_number,
            customer_id=fact.customer_id,
            channel=fact.channel,
            status="placed",
            sequence=event.sequence or 1,
            placed_at=fact.placed_at,
        )
    )
    await session.flush()


async def on_order_status_changed(session: AsyncSession, event: CloudEvent) -> None:
    """The status, unless an event of a later version was applied already."""
    fact = parse_data(event)
    assert isinstance(fact, OrderStatusChanged)
    sequence = event.sequence or 0
    await session.execute(
        update(KnownOrder)
        .where(col(KnownOrder.order_id) == fact.order_id, col(KnownOrder.sequence) < sequence)
        .values(status=fact.status, sequence=sequence)
    )


async def find(session: AsyncSession, *, order_id: str | None, order_number: str | None) -> KnownOrder | None:
    """The order by id, or by the shop's order number."""
    if order_id is not None:
        return await session.get(KnownOrder, order_id)
    query = select(KnownOrder).where(col(KnownOrder.order_number) == order_number)
    return (await session.execute(query)).scalars().first()
