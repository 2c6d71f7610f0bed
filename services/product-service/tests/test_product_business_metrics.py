"""Business metrics on /metrics: stock-outs, expired reservations and import rows, each with the right
value after the action that changes it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from product_support import create_product, finished_import, unique
from prometheus_client.parser import text_string_to_metric_families

from servicekit.db import Database
from servicekit.testing import ServiceUnderTest, TestTokenIssuer, running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    service: ServiceUnderTest, database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The service on this module's own database, its database figures recomputed at every scrape."""
    settings = service.settings_class(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        log_json=False,
        metrics_refresh_seconds=0,
    )
    async with running_app(service.create_app(settings), token_issuer) as http:
        yield http


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """Unlabelled samples of /metrics by name."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.labels
    }


async def test_stock_outs_follow_available_stock(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    write = token_issuer.auth_header("inventory:write")
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    location = await client.post(
        "/v1/locations", json={"code": unique("loc_"), "title": "L", "kind": "warehouse"}, headers=write
    )
    receipt = {"kind": "receipt", "sku": sku, "location_id": location.json()["id"], "quantity": 2}
    assert (await client.post("/v1/inventory/movements", json=receipt, headers=write)).status_code == 201
    before = await scrape(client)
    assert (before["product_stock_outs"], before["product_stock_out_locations"]) == (0, 0)

    reservation = await client.post(
        "/v1/inventory/reservations", json={"sku": sku, "quantity": 2}, headers=write
    )
    assert reservation.status_code == 201, reservation.text
    sold_out = await scrape(client)
    assert (sold_out["product_stock_outs"], sold_out["product_stock_out_locations"]) == (1, 1)

    released = await client.post(
        f"/v1/inventory/reservations/{reservation.json()['id']}/release", headers=write
    )
    assert released.status_code == 200, released.text
    assert (await scrape(client))["product_stock_outs"] == 0


async def test_expired_reservations_are_counted(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    write = token_issuer.auth_header("inventory:write")
    sku = unique("SKU-")
    await create_product(client, token_issuer, skus=[sku])
    location = await client.post(
        "/v1/locations", json={"code": unique("loc_"), "title": "L", "kind": "warehouse"}, headers=write
    )
    receipt = {"kind": "receipt", "sku": sku, "location_id": location.json()["id"], "quantity": 5}
    assert (await client.post("/v1/inventory/movements", json=receipt, headers=write)).status_code == 201
    reservation = await client.post(
        "/v1/inventory/reservations", json={"sku": sku, "quantity": 1}, headers=write
    )
    assert reservation.status_code == 201, reservation.text
    before = (await scrape(client))["product_reservations_expired_total"]
    # No route expires a hold yet (the expiry of #8 is another change): mark one as its job would.
    database = Database(database_url)
    try:
        async with database.session() as session:
            await session.execute(
                sa.text("UPDATE reservations SET status = 'expired' WHERE id = :id"),
                {"id": reservation.json()["id"]},
            )
    finally:
        await database.dispose()
    assert (await scrape(client))["product_reservations_expired_total"] == before + 1


async def test_import_rows_processed_and_failed(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    before = await scrape(client)
    lines: list[dict[str, Any]] = [
        {"sku": unique("IMP-"), "title": "Imported one"},
        {"sku": unique("IMP-"), "title": "Imported two"},
        {"sku": unique("IMP-"), "title": ""},
    ]
    response = await client.post(
        "/v1/imports",
        params={"format": "ndjson"},
        content="".join(json.dumps(line) + "\n" for line in lines).encode(),
        headers={**token_issuer.auth_header("products:write"), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202, response.text
    job = await finished_import(client, token_issuer, response.json()["id"])
    assert job["rows_failed"] >= 1
    after = await scrape(client)

    processed = after["product_import_rows_processed_total"] - before["product_import_rows_processed_total"]
    failed = after["product_import_rows_failed_total"] - before["product_import_rows_failed_total"]
    assert (processed, failed) == (job["rows_processed"], job["rows_failed"])
    assert processed == 3
