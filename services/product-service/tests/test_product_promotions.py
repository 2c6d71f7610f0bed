"""Promotions: resolved into one effective price per SKU and channel, announced when they start and end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from product_support import create_category, create_product, unique, wait_for_events

from contracts.topics import PRICES
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _priced_sku(client: httpx.AsyncClient, tokens: TestTokenIssuer, amount: str, **product: Any) -> str:
    sku = unique("SKU-")
    await create_product(client, tokens, skus=[sku], **product)
    response = await client.post(
        f"/v1/prices/{sku}",
        json={"currency": "EUR", "amount": amount},
        headers=tokens.auth_header("products:write"),
    )
    assert response.status_code == 201, response.text
    return sku


async def _promote(client: httpx.AsyncClient, tokens: TestTokenIssuer, **body: Any) -> httpx.Response:
    now = datetime.now(UTC)
    body.setdefault("title", "Sale")
    body.setdefault("starts_at", (now - timedelta(minutes=1)).isoformat())
    body.setdefault("ends_at", (now + timedelta(days=1)).isoformat())
    return await client.post("/v1/promotions", json=body, headers=tokens.auth_header("products:write"))


async def _effective(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, sku: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/prices/{sku}/effective",
        params={"currency": "EUR", **params},
        headers=tokens.auth_header("products:read"),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_percentage_promotion_on_a_sku_lowers_its_effective_price(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "40.00")
    promotion = await _promote(client, token_issuer, kind="percentage", value="25", skus=[sku])
    assert promotion.status_code == 201, promotion.text
    effective = await _effective(client, token_issuer, sku, channel="web")
    assert (effective["base_amount"], effective["effective_amount"]) == ("40.00", "30.00")
    assert effective["promotion_id"] == promotion.json()["id"]
    assert effective["reference_amount"] == "40.00"


async def test_amount_promotion_on_a_parent_category_applies_to_its_products(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    parent = await create_category(client, token_issuer)
    child = await create_category(client, token_issuer, parent_id=parent["id"])
    sku = await _priced_sku(client, token_issuer, "10.00", category_id=child["id"])
    await _promote(
        client, token_issuer, kind="amount", value="2.50", currency="EUR", category_ids=[parent["id"]]
    )
    assert (await _effective(client, token_issuer, sku))["effective_amount"] == "7.50"


async def test_every_listed_channel_shows_the_same_offer_and_others_do_not(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "20.00")
    await _promote(
        client, token_issuer, kind="percentage", value="10", skus=[sku], channels=["web", "marketplace"]
    )
    web = await _effective(client, token_issuer, sku, channel="web")
    marketplace = await _effective(client, token_issuer, sku, channel="marketplace")
    pos = await _effective(client, token_issuer, sku, channel="pos")
    assert web["effective_amount"] == marketplace["effective_amount"] == "18.00"
    assert pos["effective_amount"] == "20.00"


async def test_best_promotion_wins_and_they_do_not_stack(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "100.00")
    await _promote(client, token_issuer, kind="percentage", value="10", skus=[sku])
    best = await _promote(client, token_issuer, kind="amount", value="15.00", currency="EUR", skus=[sku])
    effective = await _effective(client, token_issuer, sku)
    assert effective["effective_amount"] == "85.00"
    assert effective["promotion_id"] == best.json()["id"]


async def test_promotion_outside_its_period_does_not_apply(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    start = datetime.now(UTC) + timedelta(days=2)
    await _promote(
        client,
        token_issuer,
        kind="percentage",
        value="50",
        skus=[sku],
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(days=1)).isoformat(),
    )
    assert (await _effective(client, token_issuer, sku))["effective_amount"] == "10.00"
    during = await _effective(client, token_issuer, sku, at=(start + timedelta(hours=1)).isoformat())
    assert during["effective_amount"] == "5.00"


async def test_promotion_ending_before_it_starts_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    now = datetime.now(UTC)
    response = await _promote(
        client,
        token_issuer,
        kind="percentage",
        value="10",
        skus=["X"],
        starts_at=now.isoformat(),
        ends_at=(now - timedelta(days=1)).isoformat(),
    )
    assert response.status_code == 422


async def test_promotion_start_and_end_are_announced(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku = await _priced_sku(client, token_issuer, "10.00")
    now = datetime.now(UTC)
    promotion = await _promote(
        client,
        token_issuer,
        kind="percentage",
        value="10",
        skus=[sku],
        starts_at=now.isoformat(),
        ends_at=(now + timedelta(seconds=2)).isoformat(),
    )
    promotion_id = promotion.json()["id"]
    events = await wait_for_events(kafka_bootstrap, PRICES, lambda e: e.subject == promotion_id, count=2)
    assert [e.type for e in events] == ["ecom.promotion.started.v1", "ecom.promotion.ended.v1"]
    assert events[0].data["skus"] == [sku]
