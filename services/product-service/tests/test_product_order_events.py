"""Stock effects of order events: reserve on placed, release on cancelled, commit on shipped, POS sales,
backorders, and one effect per event however often it is delivered."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from inventory_support import order_lines, order_status_changed
from inventory_support import order_placed as placed
from product_support import create_product, eventually, produce, unique, wait_for_events

from contracts import CloudEvent, build_event
from contracts.catalog.orders import OrderPlaced
from contracts.topics import INVENTORY, ORDERS
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


def status_changed(order_id: str, sku: str, quantity: int, status: str) -> CloudEvent:
    return order_status_changed(order_id, sku, quantity, status, previous_status="placed")


async def _stocked_sku(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, quantity: int, kind: str = "warehouse"
) -> tuple[str, str]:
    sku = unique("SKU-")
    await create_product(client, tokens, skus=[sku])
    location = await client.post(
        "/v1/locations",
        json={"code": unique("loc_"), "title": "L", "kind": kind},
        headers=tokens.auth_header("inventory:write"),
    )
    location_id = str(location.json()["id"])
    response = await client.post(
        "/v1/inventory/movements",
        json={"kind": "receipt", "sku": sku, "location_id": location_id, "quantity": quantity},
        headers=tokens.auth_header("inventory:write"),
    )
    assert response.status_code == 201
    return sku, location_id


async def _wait_stock(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, sku: str, **expected: int
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await client.get(f"/v1/inventory/{sku}", headers=tokens.auth_header("products:read"))
        ).json()
        return body if all(body[k] == v for k, v in expected.items()) else None

    result: dict[str, Any] = await eventually(check)
    return result


async def test_placed_order_reserves_its_lines(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, _ = await _stocked_sku(client, token_issuer, 5)
    await produce(kafka_bootstrap, ORDERS, [placed(unique("o-"), sku, 2)])
    await _wait_stock(client, token_issuer, sku, on_hand=5, reserved=2, available=3)


async def test_cancelled_order_releases_its_reservation(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, _ = await _stocked_sku(client, token_issuer, 5)
    order_id = unique("o-")
    await produce(
        kafka_bootstrap, ORDERS, [placed(order_id, sku, 2), status_changed(order_id, sku, 2, "cancelled")]
    )
    headers = token_issuer.auth_header("products:read")

    async def ledger() -> list[str] | None:
        items = (await client.get(f"/v1/inventory/{sku}/movements", headers=headers)).json()["items"]
        kinds = [m["kind"] for m in items]
        return kinds if len(kinds) >= 3 else None

    assert await eventually(ledger) == ["receipt", "reservation", "release"]
    await _wait_stock(client, token_issuer, sku, on_hand=5, reserved=0, available=5)


async def test_shipped_order_commits_its_reservation(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, _ = await _stocked_sku(client, token_issuer, 5)
    order_id = unique("o-")
    await produce(
        kafka_bootstrap, ORDERS, [placed(order_id, sku, 2), status_changed(order_id, sku, 2, "shipped")]
    )
    await _wait_stock(client, token_issuer, sku, on_hand=3, reserved=0, available=3)


async def test_redelivered_order_event_reserves_once(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, _ = await _stocked_sku(client, token_issuer, 5)
    event = placed(unique("o-"), sku, 1)
    marker_sku, _ = await _stocked_sku(client, token_issuer, 5)
    # The same event three times, then a marker order: once the marker is reserved, all were handled.
    await produce(kafka_bootstrap, ORDERS, [event, event, event])
    await produce(kafka_bootstrap, ORDERS, [placed(event.subject, marker_sku, 1)])
    await _wait_stock(client, token_issuer, marker_sku, reserved=1)
    await _wait_stock(client, token_issuer, sku, reserved=1, available=4)


async def test_order_beyond_stock_is_backordered_without_reserving(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, _ = await _stocked_sku(client, token_issuer, 1)
    order_id = unique("o-")
    await produce(kafka_bootstrap, ORDERS, [placed(order_id, sku, 3)])
    events = await wait_for_events(
        kafka_bootstrap,
        INVENTORY,
        lambda e: e.type == "ecom.stock.backordered.v1" and e.data["order_id"] == order_id,
    )
    assert events[0].data["quantity"] == 3
    stock = await _wait_stock(client, token_issuer, sku, reserved=0)
    assert stock["available"] == 1


async def test_in_store_sale_takes_stock_out_of_that_store(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, store = await _stocked_sku(client, token_issuer, 4, kind="store")
    await produce(kafka_bootstrap, ORDERS, [placed(unique("o-"), sku, 1, channel="pos", location_id=store)])
    stock = await _wait_stock(client, token_issuer, sku, on_hand=3, reserved=0)
    assert stock["locations"][0]["location_id"] == store


async def test_an_in_store_sale_beyond_the_stores_record_empties_it_and_records_the_shortfall(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    """The goods left the store: a sale of 6 where the record holds 4 takes the 4 (never a backorder,
    whatever safety buffer the pos channel has) and writes the 2 it lacked to the ledger."""
    sku, store = await _stocked_sku(client, token_issuer, 4, kind="store")
    buffer = await client.put(
        "/v1/inventory/channels/pos/buffer",
        json={"safety_buffer": 2},
        headers=token_issuer.auth_header("inventory:write"),
    )
    assert buffer.status_code == 200, buffer.text
    order_id = unique("o-")

    await produce(kafka_bootstrap, ORDERS, [placed(order_id, sku, 6, channel="pos", location_id=store)])

    stock = await _wait_stock(client, token_issuer, sku, on_hand=0, reserved=0, available=0)
    assert stock["locations"][0]["location_id"] == store
    movements = (
        await client.get(f"/v1/inventory/{sku}/movements", headers=token_issuer.auth_header("products:read"))
    ).json()["items"]
    shortfall = [m for m in movements if m["kind"] == "pos_shortfall"]
    assert len(shortfall) == 1
    assert shortfall[0]["reference"] == order_id
    assert shortfall[0]["on_hand_delta"] == 0
    assert "2 more" in shortfall[0]["reason"]
    held = (
        await client.get(
            "/v1/inventory/reservations",
            params={"order_id": order_id},
            headers=token_issuer.auth_header("products:read"),
        )
    ).json()["items"]
    assert [(r["quantity"], r["status"]) for r in held] == [(4, "committed")]
    await client.put(  # the other tests' pos channel has no buffer
        "/v1/inventory/channels/pos/buffer",
        json={"safety_buffer": 0},
        headers=token_issuer.auth_header("inventory:write"),
    )


async def test_each_stock_event_of_an_order_with_two_lines_of_one_sku_carries_current_figures(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, location_id = await _stocked_sku(client, token_issuer, 10)
    event = placed(unique("o-"), sku, 2)
    order = OrderPlaced.model_validate(event.data)
    twice = order.model_copy(update={"lines": [*order_lines(sku, 2), *order_lines(sku, 1)]})
    await produce(
        kafka_bootstrap, ORDERS, [build_event("ecom.order.placed.v1", twice, subject=order.order_id)]
    )
    await _wait_stock(client, token_issuer, sku, on_hand=10, reserved=3, available=7)
    events = await wait_for_events(
        kafka_bootstrap,
        INVENTORY,
        lambda e: e.subject == sku and e.data["movement"] == "reservation",
        count=2,
    )
    figures = [
        [{k: v for k, v in s.items() if k != "location_code"} for s in e.data["locations"]] for e in events
    ]
    assert figures == [
        [{"location_id": location_id, "on_hand": 10, "reserved": 2, "available": 8}],
        [{"location_id": location_id, "on_hand": 10, "reserved": 3, "available": 7}],
    ]


@pytest.mark.parametrize("unknown", ["sku", "location"])
async def test_an_order_line_for_an_unknown_sku_or_location_is_a_backorder_that_says_why(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str, unknown: str
) -> None:
    sku, location_id = await _stocked_sku(client, token_issuer, 5)
    if unknown == "sku":
        sku = unique("NO-SUCH-")
    else:
        location_id = unique("no-such-location-")
    order_id = unique("o-")

    await produce(kafka_bootstrap, ORDERS, [placed(order_id, sku, 1, location_id=location_id)])

    events = await wait_for_events(
        kafka_bootstrap,
        INVENTORY,
        lambda e: e.type == "ecom.stock.backordered.v1" and e.data["order_id"] == order_id,
    )
    assert events[0].data["reason"] == f"unknown_{unknown}"
    page = (
        await client.get(
            "/v1/inventory/reservations",
            params={"order_id": order_id},
            headers=token_issuer.auth_header("products:read"),
        )
    ).json()
    assert [(r["sku"], r["status"], r["backorder_reason"]) for r in page["items"]] == [
        (sku, "backordered", f"unknown_{unknown}")
    ]


async def test_an_order_line_beyond_stock_is_a_backorder_for_insufficient_stock(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, _ = await _stocked_sku(client, token_issuer, 1)
    order_id = unique("o-")

    await produce(kafka_bootstrap, ORDERS, [placed(order_id, sku, 3)])

    events = await wait_for_events(
        kafka_bootstrap,
        INVENTORY,
        lambda e: e.type == "ecom.stock.backordered.v1" and e.data["order_id"] == order_id,
    )
    assert events[0].data["reason"] == "insufficient_stock"
