"""Concurrent transitions of stock and reservations: each pair of settlements raced N times settles a
reservation exactly once, stock movements racing each other never go below zero or deadlock, and after
every race replaying the ledger gives the stock rows."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from inventory_support import (
    Running,
    assert_ledger_adds_up,
    ledger,
    location,
    move,
    order_placed,
    order_status_changed,
    receive,
    reservation,
    reserve,
    sku,
    stock,
)
from product_support import unique

from product_service.common import utc_now
from product_service.inventory import reservations
from product_service.inventory.orders import on_order_placed, on_order_status_changed

pytestmark = pytest.mark.asyncio(loop_scope="module")

EACH = 4  # concurrent attempts of each transition of a pair
RESERVED = 2
ON_HAND = 5

# What each transition leaves behind when it wins.
OUTCOME = {
    "release": "released",
    "cancel-event": "released",
    "commit": "committed",
    "ship-event": "committed",
    "expire": "expired",
}
PAIRS = list(itertools.combinations_with_replacement(OUTCOME, 2))


async def _order_reservation(running: Running) -> tuple[str, str, str]:
    """(sku, order id, reservation id): RESERVED of ON_HAND units held for an order, expiring in an hour."""
    sku_, location_id, order_id = await sku(running), await location(running), unique("o-")
    await receive(running, sku_, location_id, ON_HAND)
    async with running.database.session() as session:
        held = await reservations.reserve(
            session,
            sku=sku_,
            quantity=RESERVED,
            location_id=None,
            channel="web",
            order_id=order_id,
            expires_at=utc_now() + timedelta(hours=1),
        )
    assert held is not None
    return sku_, order_id, held.id


def _attempt(
    running: Running, kind: str, sku_: str, order_id: str, reservation_id: str
) -> Callable[[], Awaitable[object]]:
    """One attempt of a transition: an HTTP request, the order-event handler, or the expiry sweep's step."""

    async def http(action: str) -> httpx.Response:
        return await running.client.post(
            f"/v1/inventory/reservations/{reservation_id}/{action}", headers=running.writer()
        )

    async def event(status: str) -> None:
        async with running.database.session() as session:
            await on_order_status_changed(session, order_status_changed(order_id, sku_, RESERVED, status))

    async def expire() -> bool:
        async with running.database.session() as session:
            settled = await reservations.settle(
                session,
                reservation_id=reservation_id,
                to="expired",
                actor="expiry",
                now=utc_now() + timedelta(hours=2),
            )
        return settled is not None

    return {
        "release": lambda: http("release"),
        "commit": lambda: http("commit"),
        "cancel-event": lambda: event("cancelled"),
        "ship-event": lambda: event("shipped"),
        "expire": expire,
    }[kind]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
async def test_racing_settlements_settle_a_reservation_exactly_once(
    running: Running, first: str, second: str
) -> None:
    sku_, order_id, reservation_id = await _order_reservation(running)
    attempts = [
        _attempt(running, kind, sku_, order_id, reservation_id)
        for kind in (first, second)
        for _ in range(EACH)
    ]
    results = await asyncio.gather(*(attempt() for attempt in attempts))

    responses = [r for r in results if isinstance(r, httpx.Response)]
    assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]
    assert all(
        r.headers["content-type"] == "application/problem+json" for r in responses if r.status_code == 409
    )
    request_wins = sum(r.status_code == 200 for r in responses)
    expiry_wins = sum(r is True for r in results)
    settlements = [m for m in await _movements_after_reserving(running, sku_) if m["reserved_delta"] < 0]
    assert len(settlements) == 1, settlements
    assert request_wins + expiry_wins <= 1

    status = (await reservation(running, reservation_id))["status"]
    assert status in (OUTCOME[first], OUTCOME[second])
    current = await assert_ledger_adds_up(running, sku_, [reservation_id])
    shipped = RESERVED if status == "committed" else 0
    assert (current["on_hand"], current["reserved"], current["available"]) == (
        ON_HAND - shipped,
        0,
        ON_HAND - shipped,
    )


async def _movements_after_reserving(running: Running, sku_: str) -> list[dict[str, object]]:
    response = await running.client.get(f"/v1/inventory/{sku_}/movements", headers=running.reader())
    items: list[dict[str, object]] = response.json()["items"]
    assert [m["kind"] for m in items[:2]] == ["receipt", "reservation"]
    return items[2:]


async def test_opposite_transfers_at_the_same_time_all_complete(running: Running) -> None:
    sku_, here, there = await sku(running), await location(running), await location(running)
    await receive(running, sku_, here, 20)
    await receive(running, sku_, there, 20)
    responses = await asyncio.gather(
        *(
            move(running, kind="transfer", sku=sku_, location_id=a, to_location_id=b, quantity=1)
            for _ in range(6)
            for a, b in ((here, there), (there, here))
        )
    )
    assert [r.status_code for r in responses] == [201] * 12, [
        r.text for r in responses if r.status_code != 201
    ]
    current = await assert_ledger_adds_up(running, sku_, [])
    assert {row["location_id"]: row["on_hand"] for row in current["locations"]} == {here: 20, there: 20}


async def test_racing_reservations_sales_adjustments_and_receipts_keep_available_at_or_above_zero(
    running: Running,
) -> None:
    sku_, here = await sku(running), await location(running)
    await receive(running, sku_, here, 10)
    takers = [
        *(reserve(running, sku=sku_, quantity=1, location_id=here) for _ in range(8)),
        *(move(running, kind="sale", sku=sku_, location_id=here, quantity=1) for _ in range(4)),
        *(move(running, kind="adjustment", sku=sku_, location_id=here, quantity=-1) for _ in range(4)),
    ]
    responses = await asyncio.gather(
        *takers, move(running, kind="receipt", sku=sku_, location_id=here, quantity=2)
    )
    *taken, receipt = responses
    assert receipt.status_code == 201
    assert all(r.status_code in (201, 409) for r in taken), [r.text for r in taken]
    won = sum(r.status_code == 201 for r in taken)
    assert 10 <= won <= 12  # the receipt may land before or after some of them
    reserved_ids = [r.json()["id"] for r in taken[:8] if r.status_code == 201]
    current = await assert_ledger_adds_up(running, sku_, reserved_ids)
    assert (current["on_hand"], current["reserved"], current["available"]) == (
        12 - (won - len(reserved_ids)),
        len(reserved_ids),
        12 - won,
    )


async def test_racing_in_store_sales_and_reservations_at_the_store_never_oversell(running: Running) -> None:
    """Sales at the till (order events, each taking what the store's record holds, the rest a shortfall)
    racing reservations at the same store: every unit on record is taken once, stock never goes below
    zero, and each sale's units taken plus its shortfall are what it sold."""
    sku_, store = await sku(running), await location(running, "store")
    await receive(running, sku_, store, 6)
    orders = [unique("o-") for _ in range(EACH)]

    async def sold(order_id: str) -> None:
        async with running.database.session() as session:
            await on_order_placed(session, order_placed(order_id, sku_, 2, channel="pos", location_id=store))

    results = await asyncio.gather(
        *(sold(order_id) for order_id in orders),
        *(reserve(running, sku=sku_, quantity=1, location_id=store) for _ in range(EACH)),
    )
    reserved = [r for r in results[EACH:] if isinstance(r, httpx.Response)]
    assert all(r.status_code in (201, 409) for r in reserved), [r.text for r in reserved]
    held_ids = [r.json()["id"] for r in reserved if r.status_code == 201]
    current = await assert_ledger_adds_up(running, sku_, held_ids)
    movements = await ledger(running, sku_)
    committed = -sum(m["on_hand_delta"] for m in movements if m["kind"] == "sale")
    short = {
        m["reference"]: int(m["reason"].split(", ")[1].split(" ")[0])
        for m in movements
        if m["kind"] == "pos_shortfall"
    }
    assert committed + sum(short.values()) == 2 * EACH  # every unit sold is taken or a shortfall
    assert committed + len(held_ids) == 6 - current["available"]
    assert current["available"] >= 0
    assert set(short) <= set(orders)


async def test_racing_split_reservations_never_oversell(running: Running) -> None:
    sku_, here, there = await sku(running), await location(running), await location(running, "store")
    await receive(running, sku_, here, 3)
    await receive(running, sku_, there, 4)
    responses = await asyncio.gather(*(reserve(running, sku=sku_, quantity=2) for _ in range(10)))
    won = [r.json() for r in responses if r.status_code == 201]
    assert all(r.status_code in (201, 409) for r in responses), [r.text for r in responses]
    assert len(won) == 3  # 7 units: three reservations of 2, the last one split, one unit left over
    assert all(sum(a["quantity"] for a in body["allocations"]) == 2 for body in won)
    current = await assert_ledger_adds_up(running, sku_, [body["id"] for body in won])
    assert (current["reserved"], current["available"]) == (6, 1)


async def test_settling_after_the_race_gets_409_and_changes_nothing(running: Running) -> None:
    sku_, _, reservation_id = await _order_reservation(running)
    url = f"/v1/inventory/reservations/{reservation_id}"
    assert (await running.client.post(f"{url}/commit", headers=running.writer())).status_code == 200
    before = await stock(running, sku_)
    for action in ("release", "commit"):
        response = await running.client.post(f"{url}/{action}", headers=running.writer())
        assert response.status_code == 409
        assert response.json()["detail"] == "The reservation is committed, not active."
    assert await stock(running, sku_) == before
