"""Inventory through the HTTP API: ledger, reservations without oversell, buffers, low-stock, events."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from product_support import create_product, known_channel, unique, wait_for_events, walk_pages

from contracts.topics import INVENTORY
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _location(client: httpx.AsyncClient, tokens: TestTokenIssuer, kind: str = "warehouse") -> str:
    response = await client.post(
        "/v1/locations",
        json={"code": unique("loc_"), "title": "Location", "kind": kind},
        headers=tokens.auth_header("inventory:write"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _sku(client: httpx.AsyncClient, tokens: TestTokenIssuer) -> str:
    sku = unique("SKU-")
    await create_product(client, tokens, skus=[sku])
    return sku


async def _move(client: httpx.AsyncClient, tokens: TestTokenIssuer, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/inventory/movements", json=body, headers=tokens.auth_header("inventory:write")
    )


async def _stock(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, sku: str, **params: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/inventory/{sku}", params=params, headers=tokens.auth_header("products:read")
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _reserve(client: httpx.AsyncClient, tokens: TestTokenIssuer, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/inventory/reservations", json=body, headers=tokens.auth_header("inventory:write")
    )


async def test_receipt_sale_and_return_derive_on_hand(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    assert (
        await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=10)
    ).status_code == 201
    await _move(client, token_issuer, kind="sale", sku=sku, location_id=location, quantity=3)
    await _move(client, token_issuer, kind="return", sku=sku, location_id=location, quantity=1)
    stock = await _stock(client, token_issuer, sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (8, 0, 8)


async def test_sale_beyond_available_gets_409_and_changes_nothing(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=2)
    response = await _move(client, token_issuer, kind="sale", sku=sku, location_id=location, quantity=3)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert (await _stock(client, token_issuer, sku))["on_hand"] == 2


async def test_negative_adjustment_cannot_go_below_reserved(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=5)
    assert (
        await _reserve(client, token_issuer, sku=sku, quantity=4, location_id=location)
    ).status_code == 201
    response = await _move(
        client, token_issuer, kind="adjustment", sku=sku, location_id=location, quantity=-2
    )
    assert response.status_code == 409


async def test_transfer_moves_stock_between_locations(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    source, target = await _location(client, token_issuer), await _location(client, token_issuer, "store")
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=source, quantity=5)
    response = await _move(
        client, token_issuer, kind="transfer", sku=sku, location_id=source, to_location_id=target, quantity=2
    )
    assert response.status_code == 201, response.text
    by_location = {row["location_id"]: row["on_hand"] for row in response.json()["locations"]}
    assert by_location == {source: 3, target: 2}


async def test_movement_for_unknown_sku_gets_404(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    location = await _location(client, token_issuer)
    response = await _move(
        client, token_issuer, kind="receipt", sku="NO-SUCH", location_id=location, quantity=1
    )
    assert response.status_code == 404


async def test_zero_quantity_movement_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await _move(client, token_issuer, kind="receipt", sku="X", location_id="Y", quantity=0)
    assert response.status_code == 422


async def test_movements_need_inventory_write_scope(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/inventory/movements",
        json={"kind": "receipt", "sku": "X", "location_id": "Y", "quantity": 1},
        headers=token_issuer.auth_header("products:write"),
    )
    assert response.status_code == 403


async def test_reservation_release_and_commit_update_reserved_and_on_hand(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=10)
    first = (await _reserve(client, token_issuer, sku=sku, quantity=3)).json()
    second = (await _reserve(client, token_issuer, sku=sku, quantity=2)).json()
    stock = await _stock(client, token_issuer, sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 5, 5)
    headers = token_issuer.auth_header("inventory:write")
    assert (
        await client.post(f"/v1/inventory/reservations/{first['id']}/release", headers=headers)
    ).status_code == 200
    assert (
        await client.post(f"/v1/inventory/reservations/{second['id']}/commit", headers=headers)
    ).status_code == 200
    stock = await _stock(client, token_issuer, sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (8, 0, 8)


async def test_released_reservation_cannot_be_released_again(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=1)
    reservation = (await _reserve(client, token_issuer, sku=sku, quantity=1)).json()
    url = f"/v1/inventory/reservations/{reservation['id']}/release"
    headers = token_issuer.auth_header("inventory:write")
    assert (await client.post(url, headers=headers)).status_code == 200
    assert (await client.post(url, headers=headers)).status_code == 409
    assert (await _stock(client, token_issuer, sku))["reserved"] == 0


async def test_concurrent_reservations_never_oversell(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=20)
    responses = await asyncio.gather(
        *(
            _reserve(client, token_issuer, sku=sku, quantity=1 + i % 2, location_id=location)
            for i in range(50)
        )
    )
    won = [r for r in responses if r.status_code == 201]
    lost = [r for r in responses if r.status_code != 201]
    assert sum(r.json()["quantity"] for r in won) <= 20
    assert all(r.status_code == 409 and r.headers["content-type"] == "application/problem+json" for r in lost)
    stock = await _stock(client, token_issuer, sku)
    assert stock["reserved"] == sum(r.json()["quantity"] for r in won)
    assert stock["available"] >= 0
    assert stock["available"] < 2  # the reservations used the stock up, not a spurious failure


async def test_channel_safety_buffer_holds_stock_back(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    channel = await known_channel(database_url)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=5)
    put = await client.put(
        f"/v1/inventory/channels/{channel}/buffer",
        json={"safety_buffer": 2},
        headers=token_issuer.auth_header("inventory:write"),
    )
    assert put.status_code == 200, put.text
    assert (await _stock(client, token_issuer, sku, channel=channel))["available_for_channel"] == 3
    assert (await _reserve(client, token_issuer, sku=sku, quantity=4, channel=channel)).status_code == 409
    assert (await _reserve(client, token_issuer, sku=sku, quantity=3, channel=channel)).status_code == 201


async def test_low_stock_lists_rows_at_or_below_threshold(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=3)
    put = await client.put(
        f"/v1/inventory/{sku}/locations/{location}/threshold",
        json={"low_stock_threshold": 3},
        headers=token_issuer.auth_header("inventory:write"),
    )
    assert put.status_code == 204
    listed, _ = await walk_pages(
        client, "/v1/inventory/low-stock", token_issuer.auth_header("products:read"), limit=50
    )
    assert {"sku": sku, "location_id": location, "available": 3, "low_stock_threshold": 3} in listed
    assert (await _stock(client, token_issuer, sku))["locations"][0]["low_stock"] is True


async def test_ledger_lists_every_movement(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(
        client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=4, reference="PO-1"
    )
    await _reserve(client, token_issuer, sku=sku, quantity=1)
    response = await client.get(
        f"/v1/inventory/{sku}/movements", headers=token_issuer.auth_header("products:read")
    )
    kinds = [(m["kind"], m["on_hand_delta"], m["reserved_delta"]) for m in response.json()["items"]]
    assert kinds == [("receipt", 4, 0), ("reservation", 0, 1)]


async def test_stock_changed_events_carry_available_per_location(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=7)
    await _reserve(client, token_issuer, sku=sku, quantity=2)
    events = await wait_for_events(kafka_bootstrap, INVENTORY, lambda e: e.subject == sku, count=2)
    assert [e.data["movement"] for e in events] == ["receipt", "reservation"]
    [stock] = events[1].data["locations"]
    assert stock.pop("location_code").startswith("loc_")
    assert stock == {"location_id": location, "on_hand": 7, "reserved": 2, "available": 5}
    assert events[1].data["total_available"] == 5


async def test_retried_reservation_with_the_same_idempotency_key_reserves_once(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=5)
    headers = {**token_issuer.auth_header("inventory:write"), "Idempotency-Key": unique("key-")}
    body = {"sku": sku, "quantity": 2}
    first = await client.post("/v1/inventory/reservations", json=body, headers=headers)
    second = await client.post("/v1/inventory/reservations", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert (await _stock(client, token_issuer, sku))["reserved"] == 2


async def test_retried_movement_with_the_same_idempotency_key_moves_stock_once(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """A warehouse system retrying a receipt (a timeout, then the same request with its Idempotency-Key)
    gets the first answer again and the stock is received once; the key with another body is 422; the
    key's retries racing each other receive once too."""
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    headers = {**token_issuer.auth_header("inventory:write"), "Idempotency-Key": unique("key-")}
    body = {"kind": "receipt", "sku": sku, "location_id": location, "quantity": 7, "reference": "ASN-1"}
    first = await client.post("/v1/inventory/movements", json=body, headers=headers)
    second = await client.post("/v1/inventory/movements", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert (await _stock(client, token_issuer, sku))["on_hand"] == 7
    other = await client.post("/v1/inventory/movements", json={**body, "quantity": 8}, headers=headers)
    assert other.status_code == 422

    racing = {**token_issuer.auth_header("inventory:write"), "Idempotency-Key": unique("key-")}
    responses = await asyncio.gather(
        *(client.post("/v1/inventory/movements", json=body, headers=racing) for _ in range(5))
    )
    assert {r.status_code for r in responses} <= {201, 409}
    assert (await _stock(client, token_issuer, sku))["on_hand"] == 14
    ledger = await client.get(
        f"/v1/inventory/{sku}/movements", headers=token_issuer.auth_header("products:read")
    )
    assert [m["kind"] for m in ledger.json()["items"]].count("receipt") == 2


async def test_concurrent_buffer_settings_of_a_new_channel_all_succeed_and_one_stays(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    channel = await known_channel(database_url)
    responses = await asyncio.gather(
        *(
            client.put(
                f"/v1/inventory/channels/{channel}/buffer",
                json={"safety_buffer": value},
                headers=token_issuer.auth_header("inventory:write"),
            )
            for value in range(1, 9)
        )
    )
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    sku, location = await _sku(client, token_issuer), await _location(client, token_issuer)
    await _move(client, token_issuer, kind="receipt", sku=sku, location_id=location, quantity=10)
    buffer = 10 - (await _stock(client, token_issuer, sku, channel=channel))["available_for_channel"]
    assert buffer in range(1, 9)
