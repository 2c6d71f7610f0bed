"""Suppliers' inbound deliveries (ecom.inbound.v1 from sync-service): incoming stock in the stock API,
expected dates for backordered lines, and the stock added when a delivery is received."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from inventory_support import Running, location, order_placed, receive, sku, stock
from product_support import unique
from sqlalchemy import select
from sqlmodel import col

from contracts import CloudEvent, build_event
from contracts.catalog.inbound import InboundAnnounced, InboundLine, InboundReceived
from product_service.inventory.inbound import on_inbound_announced, on_inbound_received
from product_service.inventory.models import Reservation
from product_service.inventory.orders import on_order_placed
from servicekit.events.models import OutboxMessage

pytestmark = pytest.mark.asyncio(loop_scope="module")


def announced(inbound_id: str, location_id: str, expected: date, **lines: int) -> CloudEvent:
    return build_event(
        "ecom.inbound.announced.v1",
        InboundAnnounced(
            inbound_id=inbound_id,
            supplier="acme",
            supplier_reference=unique("PO-"),
            kind="purchase_order",
            location_id=location_id,
            expected_date=expected,
            lines=[InboundLine(sku=s, quantity=q) for s, q in lines.items()],
        ),
        subject=inbound_id,
    )


async def handle(running: Running, handler: object, event: CloudEvent) -> None:
    async with running.database.session() as session:
        await handler(session, event)  # type: ignore[operator]


async def backorder_of(running: Running, order_id: str) -> Reservation:
    async with running.database.session() as session:
        row = await session.execute(select(Reservation).where(col(Reservation.order_id) == order_id))
        return row.scalar_one()


async def events_of(running: Running, event_type: str, sku_: str) -> list[dict[str, object]]:
    async with running.database.session() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(col(OutboxMessage.event_type) == event_type, col(OutboxMessage.key) == sku_)
            .order_by(col(OutboxMessage.id))
        )
        return [CloudEvent.from_json_bytes(row.payload).data for row in rows.scalars()]


async def test_announced_stock_is_incoming_in_the_stock_api(running: Running) -> None:
    sku_, where = await sku(running), await location(running)

    await handle(
        running, on_inbound_announced, announced(str(uuid.uuid4()), where, date(2026, 12, 5), **{sku_: 30})
    )

    incoming = (await stock(running, sku_))["incoming"]
    assert [(i["location_id"], i["quantity"], i["expected_date"]) for i in incoming] == [
        (where, 30, "2026-12-05")
    ]


async def test_an_announced_delivery_gives_backorders_their_date_first_come_first_served(
    running: Running,
) -> None:
    sku_, where = await sku(running), await location(running)
    first, second, third = (unique("o-") for _ in range(3))
    for order_id, quantity in ((first, 4), (second, 5), (third, 50)):
        await handle(running, on_order_placed, order_placed(order_id, sku_, quantity))

    await handle(
        running, on_inbound_announced, announced(str(uuid.uuid4()), where, date(2026, 12, 5), **{sku_: 6})
    )
    await handle(
        running, on_inbound_announced, announced(str(uuid.uuid4()), where, date(2026, 12, 9), **{sku_: 6})
    )

    dates = [(await backorder_of(running, order_id)).expected_date for order_id in (first, second, third)]
    assert dates == [date(2026, 12, 5), date(2026, 12, 9), None]
    announced_dates = [
        e["expected_date"] for e in await events_of(running, "ecom.stock.backorder_expected.v1", sku_)
    ]
    assert announced_dates == ["2026-12-05", "2026-12-09"]


async def test_a_line_backordered_after_an_announcement_carries_the_date(running: Running) -> None:
    sku_, where = await sku(running), await location(running)
    await handle(
        running, on_inbound_announced, announced(str(uuid.uuid4()), where, date(2026, 12, 7), **{sku_: 10})
    )
    order_id = unique("o-")

    await handle(running, on_order_placed, order_placed(order_id, sku_, 3))

    (backordered,) = await events_of(running, "ecom.stock.backordered.v1", sku_)
    assert (backordered["order_id"], backordered["expected_date"]) == (order_id, "2026-12-07")
    assert backordered["reservation_id"] == (await backorder_of(running, order_id)).id


async def test_a_received_delivery_adds_the_stock_and_is_no_longer_incoming(running: Running) -> None:
    sku_, where = await sku(running), await location(running)
    await receive(running, sku_, where, 2)
    inbound_id = str(uuid.uuid4())
    await handle(running, on_inbound_announced, announced(inbound_id, where, date(2026, 12, 5), **{sku_: 30}))

    await handle(
        running,
        on_inbound_received,
        build_event(
            "ecom.inbound.received.v1",
            InboundReceived(
                inbound_id=inbound_id,
                supplier="acme",
                location_id=where,
                lines=[InboundLine(sku=sku_, quantity=28), InboundLine(sku="NOT-IN-CATALOG", quantity=1)],
                received_at=datetime.now(UTC),
            ),
            subject=inbound_id,
        ),
    )

    current = await stock(running, sku_)
    assert (current["on_hand"], current["available"], current["incoming"]) == (30, 30, [])
