"""Every list of product-service is cursor-paginated: `?limit=&cursor=`, `items` and `next_cursor`."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from product_support import create_product, unique, walk_pages

from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _read(tokens: TestTokenIssuer) -> dict[str, str]:
    return tokens.auth_header("products:read")


async def _post(client: httpx.AsyncClient, tokens: TestTokenIssuer, path: str, body: dict[str, Any]) -> Any:
    scope = "inventory:write" if path == "/v1/locations" else "products:write"
    response = await client.post(path, json=body, headers=tokens.auth_header(scope))
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _put(client: httpx.AsyncClient, tokens: TestTokenIssuer, path: str, body: dict[str, Any]) -> None:
    scope = "inventory:write" if "/threshold" in path else "products:write"
    response = await client.put(path, json=body, headers=tokens.auth_header(scope))
    assert response.status_code in (200, 204), response.text


async def test_locations_are_paged_by_code(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    created = [
        (
            await _post(
                client,
                token_issuer,
                "/v1/locations",
                {"code": unique("loc_"), "title": "L", "kind": "warehouse"},
            )
        )["id"]
        for _ in range(5)
    ]
    items, pages = await walk_pages(client, "/v1/locations", _read(token_issuer), limit=2)
    ids = [item["id"] for item in items]
    assert set(created) <= set(ids)
    assert len(ids) == len(set(ids))
    assert [item["code"] for item in items] == sorted(item["code"] for item in items)
    assert pages >= 3


async def test_suppliers_are_paged_by_code(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    created = [
        (await _post(client, token_issuer, "/v1/suppliers", {"code": unique("sup_"), "title": "S"}))["id"]
        for _ in range(5)
    ]
    items, pages = await walk_pages(client, "/v1/suppliers", _read(token_issuer), limit=2)
    ids = [item["id"] for item in items]
    assert set(created) <= set(ids)
    assert len(ids) == len(set(ids))
    assert pages >= 3


async def test_offers_of_a_supplier_and_of_a_sku_are_paged(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    skus = [unique("SKU-") for _ in range(5)]
    await create_product(client, token_issuer, skus=skus)
    suppliers = [
        (await _post(client, token_issuer, "/v1/suppliers", {"code": unique("sup_"), "title": "S"}))["id"]
        for _ in range(3)
    ]
    for supplier_id in suppliers:
        for sku in skus:
            await _put(
                client,
                token_issuer,
                f"/v1/suppliers/{supplier_id}/offers/{sku}",
                {"supplier_sku": f"{supplier_id[-6:]}-{sku}"},
            )
    of_supplier, pages = await walk_pages(
        client, f"/v1/suppliers/{suppliers[0]}/offers", _read(token_issuer), limit=2
    )
    assert sorted(offer["sku"] for offer in of_supplier) == sorted(skus)
    assert pages == 3
    of_sku, pages = await walk_pages(
        client, "/v1/suppliers/offers", _read(token_issuer), limit=2, params={"sku": skus[0]}
    )
    assert sorted(offer["supplier_id"] for offer in of_sku) == sorted(suppliers)
    assert pages == 2


async def test_price_history_is_paged_oldest_first(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    amounts = ["10.00", "11.00", "12.00", "13.00", "14.00"]
    for amount in amounts:
        await _post(client, token_issuer, f"/v1/prices/{sku}", {"currency": "EUR", "amount": amount})
    items, pages = await walk_pages(client, f"/v1/prices/{sku}/history", _read(token_issuer), limit=2)
    assert [item["amount"] for item in items] == amounts
    assert pages == 3


async def test_low_stock_is_paged_by_sku_and_location(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    location = (
        await _post(
            client, token_issuer, "/v1/locations", {"code": unique("loc_"), "title": "L", "kind": "warehouse"}
        )
    )["id"]
    skus = [unique("LOW-") for _ in range(5)]
    await create_product(client, token_issuer, skus=skus)
    for sku in skus:
        receipt = {"kind": "receipt", "sku": sku, "location_id": location, "quantity": 1}
        response = await client.post(
            "/v1/inventory/movements", json=receipt, headers=token_issuer.auth_header("inventory:write")
        )
        assert response.status_code == 201, response.text
        await _put(
            client,
            token_issuer,
            f"/v1/inventory/{sku}/locations/{location}/threshold",
            {"low_stock_threshold": 2},
        )
    items, _ = await walk_pages(client, "/v1/inventory/low-stock", _read(token_issuer), limit=2)
    keys = [(item["sku"], item["location_id"]) for item in items]
    assert {(sku, location) for sku in skus} <= set(keys)
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "path",
    [
        "/v1/locations",
        "/v1/suppliers",
        "/v1/suppliers/offers?sku=X",
        "/v1/prices/X/history",
        "/v1/inventory/low-stock",
    ],
)
async def test_a_hand_made_cursor_is_a_400(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, path: str
) -> None:
    forged = {"code": 10**25, "sku": 10**25, "location_id": [], "supplier_id": 1, "id": 10**25}
    forged["effective_from"] = "0001-01-01"
    cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    separator = "&" if "?" in path else "?"
    response = await client.get(f"{path}{separator}cursor={cursor}", headers=_read(token_issuer))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
