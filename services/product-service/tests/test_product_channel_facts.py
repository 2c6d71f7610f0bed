"""GET /v1/channel-facts: the catalogue as channels show it (details as the events carry them, prices in
effect now, stock per location), a page of products at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from product_support import create_product, unique, walk_pages

from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_a_product_s_facts_carry_its_details_prices_in_effect_and_stock(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    write = token_issuer.auth_header("products:write")
    sku = unique("FACT-")
    product = await create_product(client, token_issuer, skus=[sku], status="active", brand="Acme")
    now = datetime.now(UTC)
    for amount in ("10.00", "12.50"):
        await _ok(
            await client.post(f"/v1/prices/{sku}", json={"currency": "EUR", "amount": amount}, headers=write)
        )
    await _ok(
        await client.post(
            f"/v1/prices/{sku}",
            json={
                "currency": "EUR",
                "amount": "9.00",
                "effective_from": (now + timedelta(days=3)).isoformat(),
            },
            headers=write,
        )
    )
    location = await _ok(
        await client.post(
            "/v1/locations",
            json={"code": unique("wh_"), "title": "W", "kind": "warehouse"},
            headers=token_issuer.auth_header("inventory:write"),
        )
    )
    await _ok(
        await client.post(
            "/v1/inventory/movements",
            json={"kind": "receipt", "sku": sku, "location_id": location["id"], "quantity": 7},
            headers=token_issuer.auth_header("inventory:write"),
        )
    )

    items, _ = await walk_pages(
        client, "/v1/channel-facts", token_issuer.auth_header("products:read"), limit=200
    )
    (facts,) = [item for item in items if item["product_id"] == product["id"]]
    assert (facts["status"], facts["version"]) == ("active", product["version"])
    assert facts["details"]["brand"] == "Acme"
    assert [variant["sku"] for variant in facts["details"]["variants"]] == [sku]
    assert [(p["currency"], p["channel"], p["amount"]) for p in facts["prices"]] == [("EUR", None, "12.50")]
    (stock,) = facts["stock"]
    assert (stock["sku"], stock["location_id"], stock["location_code"], stock["available"]) == (
        sku,
        location["id"],
        location["code"],
        7,
    )


async def test_channel_facts_are_paged_in_product_id_order(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    created = [(await create_product(client, token_issuer))["id"] for _ in range(5)]
    items, pages = await walk_pages(
        client, "/v1/channel-facts", token_issuer.auth_header("products:read"), limit=2
    )
    ids = [item["product_id"] for item in items]
    assert set(created) <= set(ids)
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    assert pages >= 3


async def test_channel_facts_need_products_read(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    refused = await client.get("/v1/channel-facts", headers=token_issuer.auth_header("sync:read"))
    assert refused.status_code == 403
    too_many = await client.get(
        "/v1/channel-facts", params={"limit": 201}, headers=token_issuer.auth_header("products:read")
    )
    assert too_many.status_code == 422
    bad_cursor = await client.get(
        "/v1/channel-facts", params={"cursor": "garbage"}, headers=token_issuer.auth_header("products:read")
    )
    assert bad_cursor.status_code == 400
