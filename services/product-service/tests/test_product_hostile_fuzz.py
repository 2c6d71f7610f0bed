"""A bounded, seeded fuzz of every operation with hostile values: no answer may be a 5xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from product_support import create_product, unique

from servicekit.testing import TestTokenIssuer
from servicekit.testing.hostile import hostile_requests

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPES = ("products:read", "products:write", "inventory:write", "admin")


async def test_no_hostile_value_gets_a_5xx(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    headers = token_issuer.auth_header(*SCOPES)
    sku = unique("SKU-")
    product = await create_product(client, token_issuer, skus=[sku])
    location = (
        await client.post(
            "/v1/locations", json={"code": unique("loc_"), "title": "L", "kind": "warehouse"}, headers=headers
        )
    ).json()
    supplier = (
        await client.post("/v1/suppliers", json={"code": unique("sup_"), "title": "S"}, headers=headers)
    ).json()
    now = datetime.now(UTC)
    bases: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
        ("POST", "/v1/products"): ("/v1/products", {"title": "T", "variants": [{"sku": unique("SKU-")}]}),
        ("PATCH", "/v1/products/{product_id}"): (f"/v1/products/{product['id']}", {"title": "T2"}),
        ("POST", "/v1/products/{product_id}/variants"): (
            f"/v1/products/{product['id']}/variants",
            {"sku": unique("SKU-")},
        ),
        ("POST", "/v1/families"): (
            "/v1/families",
            {"code": unique("f_"), "title": "F", "attributes": [{"code": "a", "type": "number"}]},
        ),
        ("POST", "/v1/categories"): ("/v1/categories", {"title": "C"}),
        ("POST", "/v1/prices/{sku}"): (f"/v1/prices/{sku}", {"currency": "EUR", "amount": "1.00"}),
        ("POST", "/v1/promotions"): (
            "/v1/promotions",
            {
                "title": "P",
                "kind": "percentage",
                "value": "10",
                "skus": [sku],
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(),
            },
        ),
        ("POST", "/v1/inventory/movements"): (
            "/v1/inventory/movements",
            {"sku": sku, "location_id": location["id"], "kind": "receipt", "quantity": 1},
        ),
        ("POST", "/v1/inventory/reservations"): (
            "/v1/inventory/reservations",
            {"sku": sku, "quantity": 1, "location_id": location["id"]},
        ),
        ("PUT", "/v1/suppliers/{supplier_id}/offers/{sku}"): (
            f"/v1/suppliers/{supplier['id']}/offers/{sku}",
            {"supplier_sku": unique("F-"), "cost": "1.00", "currency": "EUR"},
        ),
        ("POST", "/v1/suppliers"): ("/v1/suppliers", {"code": unique("s_"), "title": "S"}),
        ("POST", "/v1/locations"): ("/v1/locations", {"code": unique("l_"), "title": "L", "kind": "store"}),
    }
    document = (await client.get("/openapi.json")).json()
    failures = []
    count = 0
    for request in hostile_requests(document, bases=bases):
        count += 1
        response = await client.request(
            request.method,
            request.path,
            params=request.params,
            content=request.content,
            headers={**headers, **request.headers},
        )
        if response.status_code >= 500:
            failures.append((request.method, request.path, request.params, (request.content or b"")[:200]))

    assert count > 300
    assert failures == []
