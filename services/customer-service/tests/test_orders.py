"""Orders through the HTTP API: idempotent placing, guests resolved by identify, status timeline, events."""

import asyncio
import time
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from customer_helpers import create_customer, errors_of, events_about, new_email, unique

from contracts import CloudEvent, build_event, topics
from contracts.catalog.inventory import StockBackordered
from servicekit.testing import TestTokenIssuer

WRITE = ("orders:write", "customers:read")


def order_body(**fields: Any) -> dict[str, Any]:
    return {
        "order_number": f"WEB-{unique()}",
        "channel": "web",
        "currency": "EUR",
        "lines": [
            {"sku": "TSHIRT-M", "quantity": 2, "unit_price": "19.90", "currency": "EUR"},
            {"sku": "MUG", "quantity": 1, "unit_price": "8.5", "currency": "EUR"},
        ],
        "discount_total": "5",
        **fields,
    }


async def place(client: httpx.AsyncClient, tokens: TestTokenIssuer, **fields: Any) -> httpx.Response:
    return await client.post("/v1/orders", json=order_body(**fields), headers=tokens.auth_header(*WRITE))


async def test_order_is_placed_with_computed_totals(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)

    response = await place(client, token_issuer, customer_id=customer["id"])

    assert response.status_code == 201
    body = response.json()
    assert (body["subtotal"], body["discount_total"], body["total"]) == ("48.30", "5.00", "43.30")
    assert body["status"] == "placed"
    assert [entry["status"] for entry in body["timeline"]] == ["placed"]


async def test_same_order_number_and_content_returns_the_first_order(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    body = order_body(customer_id=customer["id"])
    first = await client.post("/v1/orders", json=body, headers=token_issuer.auth_header(*WRITE))

    again = await client.post("/v1/orders", json=body, headers=token_issuer.auth_header(*WRITE))

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_same_order_number_with_other_content_gets_409(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    body = order_body(customer_id=customer["id"])
    await client.post("/v1/orders", json=body, headers=token_issuer.auth_header(*WRITE))

    response = await client.post(
        "/v1/orders", json={**body, "discount_total": "1"}, headers=token_issuer.auth_header(*WRITE)
    )

    assert response.status_code == 409


async def test_totals_that_disagree_with_the_lines_get_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)

    response = await place(client, token_issuer, customer_id=customer["id"], subtotal="50.00")

    assert response.status_code == 422
    assert "body.subtotal" in errors_of(response)


async def test_line_in_another_currency_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    lines = [{"sku": "A", "quantity": 1, "unit_price": "1", "currency": "USD"}]

    response = await place(client, token_issuer, customer_id=customer["id"], lines=lines)

    assert "body.lines.0.currency" in errors_of(response)


async def test_a_unit_price_with_more_than_two_decimals_gets_422_not_rounded(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """1.2345 was stored as 1.23 (and the totals computed from the rounded lines): refused instead."""
    customer = await create_customer(client, token_issuer)
    lines = [{"sku": "A", "quantity": 3, "unit_price": "1.2345", "currency": "EUR"}]

    response = await place(client, token_issuer, customer_id=customer["id"], lines=lines)

    assert "body.lines.0.unit_price" in errors_of(response)


async def _place_in_yen(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, unit_price: str, **fields: Any
) -> httpx.Response:
    """An order of a new customer: two units at `unit_price` yen."""
    customer = await create_customer(client, tokens)
    lines = [{"sku": "A", "quantity": 2, "unit_price": unit_price, "currency": "JPY"}]
    return await place(client, tokens, customer_id=customer["id"], currency="JPY", lines=lines, **fields)


async def test_an_amount_with_more_decimals_than_its_currency_has_gets_422_naming_the_field(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """The yen has no minor unit: 10.50 JPY was placed as an order no shop can charge."""
    response = await _place_in_yen(client, token_issuer, "10.50", discount_total="0.5")

    assert response.status_code == 422
    errors = errors_of(response)
    assert "JPY" in errors["body.lines.0.unit_price"], errors
    assert "body.discount_total" in errors, errors


async def test_whole_yen_and_trailing_zeros_are_accepted(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await _place_in_yen(client, token_issuer, "1050", total="2095.00")

    assert response.status_code == 201, response.text
    assert (response.json()["subtotal"], response.json()["total"]) == ("2100.00", "2095.00")


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "XAG", "XPT", "XPD"])
async def test_an_order_in_a_code_that_is_no_currency_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, code: str
) -> None:
    """ISO 4217 codes of metals, testing and 'no currency' are not money an order can be in."""
    customer = await create_customer(client, token_issuer)
    lines = [{"sku": "A", "quantity": 1, "unit_price": "1", "currency": code}]

    response = await place(client, token_issuer, customer_id=customer["id"], currency=code, lines=lines)

    assert response.status_code == 422
    assert {"body.currency", "body.lines.0.currency"} <= set(errors_of(response))


async def test_lines_adding_up_past_the_largest_amount_get_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """Each line within bounds, the order's total not: analytics-service (minor units in a 64-bit column)
    could not store it and dead-lettered the order's event."""
    customer = await create_customer(client, token_issuer)
    line = {"sku": "A", "quantity": 100_000, "unit_price": "9999999999.99", "currency": "EUR"}

    response = await place(client, token_issuer, customer_id=customer["id"], lines=[line] * 3)

    assert "body.lines" in errors_of(response)
    history = await client.get(
        f"/v1/customers/{customer['id']}/orders", headers=token_issuer.auth_header(*WRITE)
    )
    assert history.json()["items"] == []


async def test_unknown_customer_gets_404(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await place(client, token_issuer, customer_id="no-such-customer")

    assert response.status_code == 404


async def test_placing_needs_orders_write(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.post(
        "/v1/orders", json=order_body(), headers=token_issuer.auth_header("customers:write")
    )

    assert response.status_code == 403


async def test_guest_web_and_pos_orders_land_on_one_profile(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email = new_email()
    web = await place(client, token_issuer, customer={"email": email, "first_name": "Lin"})
    pos = await place(
        client,
        token_issuer,
        order_number=f"POS-{unique()}",
        channel="pos",
        location_id="store-7",
        customer={"email": email.upper()},
    )

    customer_id = web.json()["customer_id"]
    assert pos.json()["customer_id"] == customer_id
    history = await client.get(
        f"/v1/customers/{customer_id}/orders", headers=token_issuer.auth_header(*WRITE)
    )
    assert [o["channel"] for o in history.json()["items"]] == ["pos", "web"]


async def test_status_timeline_records_each_change(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    order = (await place(client, token_issuer, customer_id=customer["id"])).json()
    headers = token_issuer.auth_header(*WRITE)

    await client.post(f"/v1/orders/{order['id']}/status", json={"status": "paid"}, headers=headers)
    shipped = await client.post(
        f"/v1/orders/{order['id']}/status",
        json={"status": "shipped", "carrier": "DHL", "tracking_number": "JD0001"},
        headers=headers,
    )
    await client.post(f"/v1/orders/{order['id']}/status", json={"status": "delivered"}, headers=headers)

    assert (shipped.json()["carrier"], shipped.json()["tracking_number"]) == ("DHL", "JD0001")
    read = await client.get(f"/v1/orders/{order['id']}", headers=headers)
    assert [e["status"] for e in read.json()["timeline"]] == ["placed", "paid", "shipped", "delivered"]


async def test_shipping_without_tracking_number_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    order = (await place(client, token_issuer, customer_id=customer["id"])).json()
    headers = token_issuer.auth_header(*WRITE)
    await client.post(f"/v1/orders/{order['id']}/status", json={"status": "paid"}, headers=headers)

    response = await client.post(
        f"/v1/orders/{order['id']}/status", json={"status": "shipped", "carrier": "UPS"}, headers=headers
    )

    assert response.status_code == 422
    assert "body.tracking_number" in errors_of(response)


async def test_impossible_status_change_gets_409(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    order = (await place(client, token_issuer, customer_id=customer["id"])).json()

    response = await client.post(
        f"/v1/orders/{order['id']}/status",
        json={"status": "delivered"},
        headers=token_issuer.auth_header(*WRITE),
    )

    assert response.status_code == 409


async def test_order_events_match_the_contract(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    customer = await create_customer(client, token_issuer)
    order = (await place(client, token_issuer, customer_id=customer["id"], location_id="wh-1")).json()
    await client.post(
        f"/v1/orders/{order['id']}/status",
        json={"status": "cancelled"},
        headers=token_issuer.auth_header(*WRITE),
    )

    events = await events_about(
        kafka_bootstrap, topics.ORDERS, order["id"], ["ecom.order.placed.v1", "ecom.order.status_changed.v1"]
    )

    placed, changed = events
    assert placed.data["total"] == "43.30"
    assert placed.data["lines"][0] == {
        "sku": "TSHIRT-M",
        "quantity": 2,
        "unit_price": "19.90",
        "currency": "EUR",
    }
    assert (changed.data["status"], changed.data["previous_status"]) == ("cancelled", "placed")
    assert changed.data["location_id"] == "wh-1"
    assert (placed.sequence, changed.sequence) == (1, 2)


async def _announce_backorder(bootstrap: str, event: CloudEvent) -> None:
    """Publish as product-service does when it cannot reserve a line."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics.INVENTORY, event.to_json_bytes(), key=event.subject.encode())
    finally:
        await producer.stop()


async def test_a_backordered_line_shows_on_the_order_with_its_reason(
    consuming_client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    client = consuming_client
    customer = await create_customer(client, token_issuer)
    placed = (await place(client, token_issuer, customer_id=customer["id"])).json()
    fact = StockBackordered(sku="MUG", order_id=placed["id"], quantity=1, reason="unknown_sku")

    await _announce_backorder(kafka_bootstrap, build_event("ecom.stock.backordered.v1", fact, subject="MUG"))

    url, headers = f"/v1/orders/{placed['id']}", token_issuer.auth_header(*WRITE)
    deadline = time.monotonic() + 20
    while True:
        order = (await client.get(url, headers=headers)).json()
        if any(line.get("backorder_reason") for line in order["lines"]) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    by_sku = {line["sku"]: line for line in order["lines"]}
    assert (by_sku["MUG"]["backordered_quantity"], by_sku["MUG"]["backorder_reason"]) == (1, "unknown_sku")
    assert by_sku["TSHIRT-M"]["backorder_reason"] is None
    assert order["version"] == placed["version"] + 1
