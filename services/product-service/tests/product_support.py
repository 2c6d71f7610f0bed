"""Helpers shared by product-service tests: unique data, API shortcuts, reading events off topics."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from servicekit.testing import TestTokenIssuer
from servicekit.testing.events import EVENT_TIMEOUT_S, eventually, produce, wait_for_events

__all__ = ["EVENT_TIMEOUT_S", "eventually", "produce", "wait_for_events"]

TEST_CHANNELS = ("web", "marketplace", "pos", "print")
"""Channel codes the tests use, known to product-service's channel projection from the start."""


async def register_channels(database_url: str, codes: Sequence[str]) -> None:
    """Put `codes` into the channel projection, as sync-service's ecom.channel.registered.v1 would."""
    from product_service.channels.models import KnownChannel
    from servicekit.db import Database

    database = Database(database_url)
    try:
        async with database.session() as session:
            for code in codes:
                session.add(
                    KnownChannel(
                        code=code,
                        channel_id=f"test-{code}",
                        title=code,
                        kind="webhook",
                        status="enabled",
                        version=1,
                        updated_at=datetime.now(UTC),
                    )
                )
    finally:
        await database.dispose()


async def known_channel(database_url: str) -> str:
    """A fresh channel code that product-service's channel projection knows."""
    code = unique("ch-")
    await register_channels(database_url, [code])
    return code


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def gtin13(body12: str) -> str:
    """A valid EAN-13 from 12 digits."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body12)))
    return body12 + str((10 - total % 10) % 10)


def random_gtin() -> str:
    return gtin13(str(uuid.uuid4().int)[:12])


async def create_family(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, attributes: list[dict[str, Any]]
) -> dict[str, Any]:
    response = await client.post(
        "/v1/families",
        json={"code": unique("fam_"), "title": "Family", "attributes": attributes},
        headers=tokens.auth_header("products:write"),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def create_category(
    client: httpx.AsyncClient,
    tokens: TestTokenIssuer,
    *,
    family_id: str | None = None,
    parent_id: str | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/categories",
        json={"title": unique("Category "), "family_id": family_id, "parent_id": parent_id},
        headers=tokens.auth_header("products:write"),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def create_product(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, *, skus: list[str] | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"title": unique("Product "), **fields}
    body.setdefault("variants", [{"sku": sku} for sku in (skus if skus is not None else [unique("SKU-")])])
    response = await client.post("/v1/products", json=body, headers=tokens.auth_header("products:write"))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def finished_import(client: httpx.AsyncClient, tokens: TestTokenIssuer, job_id: str) -> dict[str, Any]:
    """Poll an import job until it has succeeded or failed (bounded)."""
    headers = tokens.auth_header("products:read")

    async def done() -> dict[str, Any] | None:
        job: dict[str, Any] = (await client.get(f"/v1/imports/{job_id}", headers=headers)).json()
        return job if job["status"] in ("succeeded", "failed") else None

    result: dict[str, Any] = await eventually(done)
    return result


async def walk_pages(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    limit: int = 2,
    params: dict[str, Any] | None = None,
    max_pages: int = 500,
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a cursor-paginated list, following next_cursor; with the number of pages read."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {**(params or {}), "limit": limit}
    for pages in range(1, max_pages + 1):
        response = await client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        if body["next_cursor"] is None:
            return items, pages
        query["cursor"] = body["next_cursor"]
    raise AssertionError(f"{url} did not end within {max_pages} pages")
