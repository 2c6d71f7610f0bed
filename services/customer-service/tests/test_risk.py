"""Risk rules through the HTTP API: each rule raises one flag with its reason, and an event."""

from typing import Any

import httpx
from customer_helpers import create_customer, events_about, new_phone, unique

from contracts import topics
from servicekit.testing import TestTokenIssuer

HEADERS = ("orders:write", "customers:read", "customers:write")


async def _order(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, customer_id: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "order_number": f"R-{unique()}",
        "customer_id": customer_id,
        "channel": "web",
        "currency": "EUR",
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "20", "currency": "EUR"}],
        **fields,
    }
    response = await client.post("/v1/orders", json=body, headers=tokens.auth_header(*HEADERS))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _flags(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, customer_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/risk/flags", params={"customer_id": customer_id}, headers=tokens.auth_header(*HEADERS)
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_order_velocity_is_flagged(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    customer = await create_customer(client, token_issuer)
    for _ in range(5):
        await _order(client, token_issuer, customer["id"])

    flags = await _flags(client, token_issuer, customer["id"])

    assert [(f["rule"], f["reason"]) for f in flags] == [("order_velocity", "5 orders within 60 minutes")]


async def test_billing_and_shipping_country_mismatch_is_flagged(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    order = await _order(client, token_issuer, customer["id"], billing_country="FR", shipping_country="NG")

    (flag,) = await _flags(client, token_issuer, customer["id"])

    assert (flag["rule"], flag["order_id"]) == ("country_mismatch", order["id"])
    assert "FR" in flag["reason"]


async def test_high_first_order_is_flagged(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    customer = await create_customer(client, token_issuer)
    lines = [{"sku": "TV", "quantity": 1, "unit_price": "1500", "currency": "EUR"}]
    await _order(client, token_issuer, customer["id"], lines=lines)

    assert [f["rule"] for f in await _flags(client, token_issuer, customer["id"])] == ["high_first_order"]


async def test_many_shipping_addresses_are_flagged(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    addresses = [
        {"kind": "shipping", "line1": f"{n} Rue Haute", "city": "Lille", "postcode": "59000", "country": "FR"}
        for n in range(5)
    ]
    customer = await create_customer(client, token_issuer, addresses=addresses)

    assert [f["rule"] for f in await _flags(client, token_issuer, customer["id"])] == [
        "many_shipping_addresses"
    ]


async def test_phone_shared_across_many_customers_is_flagged(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    phone = new_phone()
    for name in ("Anna", "Bert"):
        await create_customer(client, token_issuer, first_name=name, phones=[{"number": phone}])
    third = await create_customer(client, token_issuer, first_name="Cleo", phones=[{"number": phone}])

    (flag,) = await _flags(client, token_issuer, third["id"])

    assert flag["rule"] == "shared_identifier"


async def test_ordinary_order_raises_no_flag(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    await _order(client, token_issuer, customer["id"], billing_country="FR", shipping_country="FR")

    assert await _flags(client, token_issuer, customer["id"]) == []


async def test_flag_emits_an_event(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    customer = await create_customer(client, token_issuer)
    await _order(client, token_issuer, customer["id"], billing_country="DE", shipping_country="US")

    events = await events_about(
        kafka_bootstrap, topics.CUSTOMERS, customer["id"], ["ecom.customer.flagged.v1"]
    )

    (flagged,) = [e for e in events if e.type == "ecom.customer.flagged.v1"]
    assert flagged.data["rule"] == "country_mismatch"
