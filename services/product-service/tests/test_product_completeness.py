"""Completeness per product and channel, publishability, and the completeness report."""

from __future__ import annotations

import httpx
import pytest
from product_support import create_category, create_family, create_product

from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")

ATTRIBUTES = [
    {"code": "material", "type": "text", "required_channels": ["web", "marketplace"]},
    {"code": "weight", "type": "measurement", "units": ["g"], "required_channels": ["marketplace"]},
    {"code": "size", "type": "enum", "options": ["S", "M"], "required_channels": ["marketplace"]},
    {"code": "note", "type": "text"},
]


async def _category(client: httpx.AsyncClient, tokens: TestTokenIssuer) -> str:
    family = await create_family(client, tokens, ATTRIBUTES)
    return str((await create_category(client, tokens, family_id=family["id"]))["id"])


async def test_completeness_is_the_share_of_required_attributes_filled_per_channel(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    category_id = await _category(client, token_issuer)
    product = await create_product(
        client, token_issuer, category_id=category_id, attributes={"material": "wool"}
    )
    completeness = product["completeness"]
    assert completeness["web"]["completeness"] == 1.0
    assert completeness["marketplace"]["completeness"] == pytest.approx(1 / 3, abs=1e-3)
    assert sorted(completeness["marketplace"]["missing"]) == ["size", "weight"]
    assert completeness["web"]["publishable"] is True
    assert completeness["marketplace"]["publishable"] is False


async def test_product_below_a_channel_threshold_cannot_be_published_there(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    category_id = await _category(client, token_issuer)
    product = await create_product(
        client, token_issuer, category_id=category_id, attributes={"material": "wool"}
    )
    response = await client.patch(
        f"/v1/products/{product['id']}",
        json={"channels": ["marketplace"]},
        headers={**token_issuer.auth_header("products:write"), "If-Match": '"1"'},
    )
    assert response.status_code == 422
    assert "marketplace" in response.json()["detail"]


async def test_complete_product_can_be_published_to_the_channel(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    category_id = await _category(client, token_issuer)
    attributes = {"material": "wool", "weight": {"value": 100, "unit": "g"}, "size": "M"}
    product = await create_product(client, token_issuer, category_id=category_id, attributes=attributes)
    response = await client.patch(
        f"/v1/products/{product['id']}",
        json={"channels": ["marketplace", "web"]},
        headers={**token_issuer.auth_header("products:write"), "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["channels"] == ["marketplace", "web"]


async def test_report_lists_products_below_the_channel_threshold(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    category_id = await _category(client, token_issuer)
    incomplete = await create_product(
        client, token_issuer, category_id=category_id, attributes={"material": "x"}
    )
    complete = await create_product(
        client,
        token_issuer,
        category_id=category_id,
        attributes={"material": "x", "weight": {"value": 1, "unit": "g"}, "size": "S"},
    )
    headers = token_issuer.auth_header("products:read")
    ids: list[str] = []
    cursor = None
    while True:
        params = {"channel": "marketplace", "below_threshold": "true", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/reports/completeness", params=params, headers=headers)).json()
        ids += [entry["product_id"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert incomplete["id"] in ids
    assert complete["id"] not in ids
    assert len(ids) == len(set(ids))


async def test_report_needs_a_channel(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.get("/v1/reports/completeness", headers=token_issuer.auth_header("products:read"))
    assert response.status_code == 422
