"""Suppliers: records, offers per SKU (supplier SKU, cost, lead time, minimum order), feed import."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from product_support import create_product, unique

from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _supplier(client: httpx.AsyncClient, tokens: TestTokenIssuer) -> dict[str, Any]:
    response = await client.post(
        "/v1/suppliers",
        json={"code": unique("sup_"), "title": "Supplier", "default_lead_time_days": 7},
        headers=tokens.auth_header("products:write"),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _offer(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, supplier_id: str, sku: str, **body: Any
) -> httpx.Response:
    return await client.put(
        f"/v1/suppliers/{supplier_id}/offers/{sku}", json=body, headers=tokens.auth_header("products:write")
    )


async def test_offer_records_supplier_sku_cost_lead_time_and_moq(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    supplier = await _supplier(client, token_issuer)
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    response = await _offer(
        client,
        token_issuer,
        supplier["id"],
        sku,
        supplier_sku="S-1",
        cost="3.20",
        currency="EUR",
        min_order_quantity=12,
    )
    assert response.status_code == 200, response.text
    offers = (
        await client.get(
            "/v1/suppliers/offers", params={"sku": sku}, headers=token_issuer.auth_header("products:read")
        )
    ).json()["items"]
    assert len(offers) == 1
    offer = offers[0]
    assert (offer["supplier_sku"], offer["cost"], offer["min_order_quantity"]) == ("S-1", "3.20", 12)
    assert offer["lead_time_days"] == 7


async def test_concurrent_settings_of_one_offer_all_succeed_and_one_stays(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """PUTs of a new offer sent at once: each is a create-or-replace, so all succeed (the first creates,
    the others replace) and the offer ends as one of them; PUTs giving two SKUs one supplier SKU at once
    leave it with one of them and answer the other 409, never a 500."""
    supplier = await _supplier(client, token_issuer)
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    responses = await asyncio.gather(
        *(_offer(client, token_issuer, supplier["id"], sku, supplier_sku=f"S-{n}") for n in range(6))
    )
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    offers = (
        await client.get(
            "/v1/suppliers/offers", params={"sku": sku}, headers=token_issuer.auth_header("products:read")
        )
    ).json()["items"]
    assert len(offers) == 1
    assert offers[0]["supplier_sku"] in {f"S-{n}" for n in range(6)}

    others = [unique("SKU-") for _ in range(4)]
    for other in others:
        await create_product(client, token_issuer, skus=[other])
    shared = await asyncio.gather(
        *(_offer(client, token_issuer, supplier["id"], other, supplier_sku="SHARED") for other in others)
    )
    assert sorted(r.status_code for r in shared) == [200, 409, 409, 409], [r.text for r in shared]


async def test_offer_for_unknown_sku_is_404(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    supplier = await _supplier(client, token_issuer)
    assert (await _offer(client, token_issuer, supplier["id"], "NOPE", supplier_sku="X")).status_code == 404


async def test_duplicate_supplier_code_is_409(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    code = unique("sup_")
    headers = token_issuer.auth_header("products:write")
    first = await client.post("/v1/suppliers", json={"code": code, "title": "A"}, headers=headers)
    second = await client.post("/v1/suppliers", json={"code": code, "title": "B"}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 409)


async def test_feed_updates_cost_and_stock_and_reports_bad_rows(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    supplier = await _supplier(client, token_issuer)
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    await _offer(client, token_issuer, supplier["id"], sku, supplier_sku="F-1", cost="1.00", currency="EUR")
    feed = (
        "supplier_sku,cost,currency,available_quantity,lead_time_days\n"
        "F-1,1.50,EUR,40,3\nF-404,2.00,EUR,1,1\nF-1,abc,EUR,1,1\n"
    )
    response = await client.post(
        f"/v1/suppliers/{supplier['id']}/feed",
        content=feed.encode(),
        headers={**token_issuer.auth_header("products:write"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["rows"], result["updated"]) == (3, 1)
    assert [e["row_number"] for e in result["errors"]] == [2, 3]
    offer = (
        await client.get(
            f"/v1/suppliers/{supplier['id']}/offers", headers=token_issuer.auth_header("products:read")
        )
    ).json()["items"][0]
    assert (offer["cost"], offer["available_quantity"], offer["lead_time_days"]) == ("1.50", 40, 3)


async def test_feed_without_supplier_sku_column_is_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    supplier = await _supplier(client, token_issuer)
    response = await client.post(
        f"/v1/suppliers/{supplier['id']}/feed",
        content=b"sku,cost\nA,1\n",
        headers={**token_issuer.auth_header("products:write"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 422
