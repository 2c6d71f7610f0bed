"""product-service accepts only channel codes sync-service registered (its projection of
ecom.channels.v1): every route that takes a channel code refuses an unknown one with 422."""

from decimal import Decimal
from typing import Any

import httpx
import pytest
from product_support import create_product, eventually, produce, unique

from contracts import build_event, topics
from contracts.catalog.channels import ChannelRegistered, ChannelRetired
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


def channel_facts(code: str, *, version: int = 1) -> dict[str, Any]:
    return {
        "channel_id": f"ch-{code}",
        "code": code,
        "title": code.title(),
        "kind": "webhook",
        "status": "enabled",
        "currency": "EUR",
        "locale": "fr-FR",
        "price_adjustment_percent": Decimal("0"),
        "category_ids": [],
        "location_codes": [],
        "safety_buffer": 0,
        "completeness_threshold": 1.0,
        "drift_policy": "report",
        "version": version,
    }


def writer(tokens: TestTokenIssuer) -> dict[str, str]:
    return tokens.auth_header("products:write", "products:read", "inventory:write")


def assert_unknown_channel(response: httpx.Response, code: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert code in response.json()["detail"]


async def test_every_route_taking_a_channel_code_refuses_an_unknown_one(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    code = unique("nowhere-")
    headers = writer(token_issuer)
    product = await create_product(client, token_issuer)
    sku = product["variants"][0]["sku"]
    attempts = [
        client.post(
            "/v1/products",
            json={"title": "P", "variants": [{"sku": unique("SKU-")}], "channels": [code]},
            headers=headers,
        ),
        client.post(
            "/v1/families",
            json={
                "code": unique("fam_"),
                "title": "F",
                "attributes": [{"code": "colour", "type": "text", "required_channels": [code]}],
            },
            headers=headers,
        ),
        client.post(
            f"/v1/prices/{sku}", json={"currency": "EUR", "amount": "10.00", "channel": code}, headers=headers
        ),
        client.get(
            f"/v1/prices/{sku}/effective", params={"currency": "EUR", "channel": code}, headers=headers
        ),
        client.post(
            "/v1/promotions",
            json={
                "title": "Sale",
                "kind": "percentage",
                "value": "10",
                "skus": [sku],
                "channels": [code],
                "starts_at": "2030-01-01T00:00:00Z",
                "ends_at": "2030-01-02T00:00:00Z",
            },
            headers=headers,
        ),
        client.put(f"/v1/inventory/channels/{code}/buffer", json={"safety_buffer": 2}, headers=headers),
        client.get("/v1/reports/completeness", params={"channel": code}, headers=headers),
    ]
    for attempt in attempts:
        assert_unknown_channel(await attempt, code)
    patched = await client.patch(
        f"/v1/products/{product['id']}",
        json={"channels": [code]},
        headers={**headers, "If-Match": f'"{product["version"]}"'},
    )
    assert_unknown_channel(patched, code)
    unchanged = await client.get(f"/v1/products/{product['id']}", headers=headers)
    assert unchanged.json()["channels"] == []
    assert unchanged.json()["version"] == product["version"]


async def test_a_channel_registered_in_sync_service_is_accepted_and_refused_again_once_retired(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    code = unique("shop-")
    headers = writer(token_issuer)
    registered = build_event(
        "ecom.channel.registered.v1",
        ChannelRegistered(**channel_facts(code)),
        subject=f"ch-{code}",
        sequence=1,
    )
    await produce(kafka_bootstrap, topics.CHANNELS, [registered])

    async def buffer_accepted() -> bool:
        response = await client.put(
            f"/v1/inventory/channels/{code}/buffer", json={"safety_buffer": 3}, headers=headers
        )
        return response.status_code == 200

    await eventually(buffer_accepted)
    product = await create_product(client, token_issuer, channels=[code])
    assert product["channels"] == [code]

    retired = build_event(
        "ecom.channel.retired.v1",
        ChannelRetired(**{**channel_facts(code, version=2), "status": "retired"}),
        subject=f"ch-{code}",
        sequence=2,
    )
    await produce(kafka_bootstrap, topics.CHANNELS, [retired])

    async def buffer_refused() -> bool:
        response = await client.put(
            f"/v1/inventory/channels/{code}/buffer", json={"safety_buffer": 3}, headers=headers
        )
        return response.status_code == 422

    await eventually(buffer_refused)
