"""The data quality report: each kind of problem is found, and a clean product is not listed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from product_support import create_category, create_family, create_product, gtin13, unique
from sqlalchemy import text

from servicekit.db import Database
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _report(client: httpx.AsyncClient, tokens: TestTokenIssuer) -> dict[str, Any]:
    response = await client.get(
        "/v1/reports/data-quality", params={"limit": 1000}, headers=tokens.auth_header("products:read")
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_missing_required_attributes_are_listed_per_channel(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    family = await create_family(
        client, token_issuer, [{"code": "material", "type": "text", "required_channels": ["web"]}]
    )
    category = await create_category(client, token_issuer, family_id=family["id"])
    product = await create_product(client, token_issuer, category_id=category["id"])
    items = (await _report(client, token_issuer))["missing_required_attributes"]["items"]
    assert {"product_id": product["id"], "missing": {"web": ["material"]}} in items


async def test_same_gtin_written_with_and_without_leading_zero_is_a_duplicate(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    gtin = gtin13("4" + str(datetime.now(UTC).timestamp()).replace(".", "")[-11:])
    first, second = unique("G-"), unique("G-")
    await create_product(client, token_issuer, variants=[{"sku": first, "gtin": gtin}])
    await create_product(client, token_issuer, variants=[{"sku": second, "gtin": "0" + gtin}])
    duplicates = (await _report(client, token_issuer))["duplicate_gtins"]["items"]
    assert {"gtin": "0" + gtin, "skus": sorted([first, second])} in duplicates


async def test_invalid_gtin_already_in_the_database_is_listed(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    sku = unique("BAD-")
    product = await create_product(client, token_issuer, skus=[unique("OK-")])
    database = Database(database_url)
    try:
        async with database.session() as session:
            await session.execute(
                text(
                    "INSERT INTO variants (sku, product_id, gtin, attributes, created_at) "
                    "VALUES (:sku, :pid, '12345678', '{}', :now)"
                ),
                {"sku": sku, "pid": product["id"], "now": datetime.now(UTC)},
            )
    finally:
        await database.dispose()
    invalid = (await _report(client, token_issuer))["invalid_gtins"]["items"]
    assert {"sku": sku, "gtin": "12345678"} in invalid


async def test_near_identical_names_are_paired(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    word = unique("Quality")
    a = await create_product(client, token_issuer, title=f"{word} Running Shoe Blue")
    b = await create_product(client, token_issuer, title=f"{word} running-shoe, blue")
    pairs = (await _report(client, token_issuer))["near_identical_names"]["items"]
    assert any(set(pair["product_ids"]) == {a["id"], b["id"]} for pair in pairs)


async def test_price_below_cost_is_listed(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    sku = unique("PBC-")
    await create_product(client, token_issuer, skus=[sku])
    await client.post(
        f"/v1/prices/{sku}",
        json={"currency": "EUR", "amount": "5.00", "cost": "6.00"},
        headers=token_issuer.auth_header("products:write"),
    )
    items = (await _report(client, token_issuer))["price_below_cost"]["items"]
    assert {"sku": sku, "currency": "EUR", "channel": None, "amount": "5.00", "cost": "6.00"} in items


async def test_active_product_without_stock_is_listed_and_stocked_one_is_not(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    empty = await create_product(client, token_issuer, status="active")
    stocked_sku = unique("STK-")
    stocked = await create_product(client, token_issuer, status="active", skus=[stocked_sku])
    location = await client.post(
        "/v1/locations",
        json={"code": unique("l_"), "title": "W", "kind": "warehouse"},
        headers=token_issuer.auth_header("inventory:write"),
    )
    await client.post(
        "/v1/inventory/movements",
        json={"kind": "receipt", "sku": stocked_sku, "location_id": location.json()["id"], "quantity": 2},
        headers=token_issuer.auth_header("inventory:write"),
    )
    listed = (await _report(client, token_issuer))["active_without_stock"]["items"]
    assert empty["id"] in listed
    assert stocked["id"] not in listed
