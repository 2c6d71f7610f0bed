"""Writers that touch several stock rows of one SKU take them in one order, so on PostgreSQL they wait
for each other instead of deadlocking (a deadlock would be a 500 or a failed event)."""

from __future__ import annotations

import asyncio

import pytest
from inventory_support import (
    Running,
    assert_ledger_adds_up,
    location,
    order_status_changed,
    receive,
    reserve,
    sku,
)
from product_support import unique

from product_service.inventory import reservations
from product_service.inventory.orders import on_order_status_changed

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROUNDS = 5


async def _cancel(running: Running, order_id: str, sku_: str) -> None:
    async with running.database.session() as session:
        await on_order_status_changed(session, order_status_changed(order_id, sku_, 2, "cancelled"))


async def test_cancelling_an_order_held_at_two_locations_while_a_split_reservation_runs_never_deadlocks(
    running: Running,
) -> None:
    for _ in range(ROUNDS):
        sku_ = await sku(running)
        low, high = sorted([await location(running), await location(running)])
        await receive(running, sku_, low, 2)
        await receive(running, sku_, high, 2)
        order_id = unique("o-")
        held = []
        # The order's first line is held at the later location, its second at the earlier one.
        async with running.database.session() as session:
            for at in (high, low):
                reservation = await reservations.reserve(
                    session, sku=sku_, quantity=1, location_id=at, channel="web", order_id=order_id
                )
                assert reservation is not None
                held.append(reservation.id)

        _, split = await asyncio.gather(
            _cancel(running, order_id, sku_), reserve(running, sku=sku_, quantity=2)
        )
        assert split.status_code in (201, 409), split.text
        reserved = [split.json()["id"]] if split.status_code == 201 else []
        current = await assert_ledger_adds_up(running, sku_, [*held, *reserved])
        assert current["reserved"] == (2 if reserved else 0)
