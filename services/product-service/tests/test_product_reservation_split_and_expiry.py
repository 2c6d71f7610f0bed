"""Reservations split across locations when no one location has the units, and reservations that expire."""

from __future__ import annotations

from typing import Any

import pytest
from inventory_support import (
    Running,
    assert_ledger_adds_up,
    ledger,
    location,
    order_placed,
    receive,
    reservation,
    reserve,
    sku,
    stock,
)
from product_support import eventually, known_channel, unique

from product_service.inventory.orders import on_order_placed
from product_service.inventory.repository import reservations_of_order

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _two_locations(running: Running, first: int, second: int) -> tuple[str, str, str]:
    """A SKU with `first` units at a warehouse and `second` at a store."""
    sku_, warehouse, store = await sku(running), await location(running), await location(running, "store")
    for location_id, units in ((warehouse, first), (store, second)):
        if units:
            await receive(running, sku_, location_id, units)
    return sku_, warehouse, store


def _allocations(body: dict[str, Any]) -> dict[str, int]:
    return {a["location_id"]: a["quantity"] for a in body["allocations"]}


async def test_reservation_larger_than_any_one_location_is_split_across_locations(running: Running) -> None:
    sku_, warehouse, store = await _two_locations(running, 1, 2)
    response = await reserve(running, sku=sku_, quantity=3)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["location_id"], _allocations(body)) == (None, {warehouse: 1, store: 2})
    current = await assert_ledger_adds_up(running, sku_, [body["id"]])
    assert (current["reserved"], current["available"]) == (3, 0)


async def test_reservation_one_location_covers_is_held_there_whole(running: Running) -> None:
    sku_, _, store = await _two_locations(running, 1, 3)
    body = (await reserve(running, sku=sku_, quantity=3)).json()
    assert (body["location_id"], _allocations(body)) == (store, {store: 3})


async def test_reservation_at_a_named_location_is_not_split(running: Running) -> None:
    sku_, warehouse, _ = await _two_locations(running, 1, 2)
    response = await reserve(running, sku=sku_, quantity=3, location_id=warehouse)
    assert response.status_code == 409
    assert response.json()["detail"] == f"Not enough available stock of {sku_} at {warehouse} to reserve 3."
    assert (await stock(running, sku_))["reserved"] == 0


async def test_reservation_beyond_all_locations_together_gets_409_saying_so(running: Running) -> None:
    sku_, _, _ = await _two_locations(running, 1, 2)
    response = await reserve(running, sku=sku_, quantity=4)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "even split over all locations" in response.json()["detail"]
    assert (await stock(running, sku_))["reserved"] == 0


async def test_split_keeps_the_channel_buffer_at_each_location(running: Running, database_url: str) -> None:
    sku_, _, _ = await _two_locations(running, 2, 3)
    channel = await known_channel(database_url)
    put = await running.client.put(
        f"/v1/inventory/channels/{channel}/buffer", json={"safety_buffer": 1}, headers=running.writer()
    )
    assert put.status_code == 200
    assert (await reserve(running, sku=sku_, quantity=4, channel=channel)).status_code == 409
    assert (await reserve(running, sku=sku_, quantity=3, channel=channel)).status_code == 201


async def test_releasing_a_split_reservation_gives_back_every_location(running: Running) -> None:
    sku_, warehouse, store = await _two_locations(running, 1, 2)
    body = (await reserve(running, sku=sku_, quantity=3)).json()
    response = await running.client.post(
        f"/v1/inventory/reservations/{body['id']}/release", headers=running.writer()
    )
    assert response.status_code == 200, response.text
    current = await assert_ledger_adds_up(running, sku_, [body["id"]])
    assert {row["location_id"]: row["available"] for row in current["locations"]} == {warehouse: 1, store: 2}


async def test_committing_a_split_reservation_ships_from_every_location(running: Running) -> None:
    sku_, warehouse, store = await _two_locations(running, 2, 2)
    body = (await reserve(running, sku=sku_, quantity=3)).json()
    response = await running.client.post(
        f"/v1/inventory/reservations/{body['id']}/commit", headers=running.writer()
    )
    assert response.status_code == 200, response.text
    current = await assert_ledger_adds_up(running, sku_, [body["id"]])
    assert current["on_hand"] == 1
    assert (
        sum(row["on_hand"] for row in current["locations"] if row["location_id"] in (warehouse, store)) == 1
    )


async def test_order_line_larger_than_any_one_location_is_split(running: Running) -> None:
    sku_, warehouse, store = await _two_locations(running, 1, 2)
    order_id = unique("o-")
    async with running.database.session() as session:
        await on_order_placed(session, order_placed(order_id, sku_, 3))
    async with running.database.session() as session:
        (held,) = await reservations_of_order(session, order_id)
    body = await reservation(running, held.id)
    assert (body["status"], _allocations(body)) == ("active", {warehouse: 1, store: 2})


async def test_reservation_with_a_ttl_expires_and_its_units_become_available(running: Running) -> None:
    sku_, _, _ = await _two_locations(running, 2, 0)
    body = (await reserve(running, sku=sku_, quantity=2, ttl_seconds=1)).json()
    assert body["expires_at"] is not None

    async def expired() -> bool:
        return (await reservation(running, body["id"]))["status"] == "expired"

    await eventually(expired)
    current = await assert_ledger_adds_up(running, sku_, [body["id"]])
    assert (current["reserved"], current["available"]) == (0, 2)
    assert (await ledger(running, sku_))[-1]["reason"] == "reservation expired"


async def test_committed_reservation_does_not_expire(running: Running) -> None:
    sku_, _, _ = await _two_locations(running, 2, 0)
    marker_sku, _, _ = await _two_locations(running, 1, 0)
    body = (await reserve(running, sku=sku_, quantity=2, ttl_seconds=1)).json()
    committed = await running.client.post(
        f"/v1/inventory/reservations/{body['id']}/commit", headers=running.writer()
    )
    assert committed.status_code == 200
    # A later reservation with the same deadline expiring shows that the sweep has run past this one.
    marker = (await reserve(running, sku=marker_sku, quantity=1, ttl_seconds=1)).json()

    async def marker_expired() -> bool:
        return (await reservation(running, marker["id"]))["status"] == "expired"

    await eventually(marker_expired)
    assert (await reservation(running, body["id"]))["status"] == "committed"
    current = await assert_ledger_adds_up(running, sku_, [body["id"]])
    assert (current["on_hand"], current["reserved"]) == (0, 0)


async def test_ttl_over_seven_days_gets_422(running: Running) -> None:
    sku_, _, _ = await _two_locations(running, 1, 0)
    response = await reserve(running, sku=sku_, quantity=1, ttl_seconds=7 * 24 * 3600 + 1)
    assert response.status_code == 422
