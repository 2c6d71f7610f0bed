"""Suppliers' inbound deliveries: announced idempotently by the supplier's reference, received once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlmodel import col
from sync_support import Running, unique

from servicekit.events.models import OutboxMessage
from sync_service.listings.models import CatalogVariant

pytestmark = pytest.mark.asyncio(loop_scope="module")

EACH = 4


def notice(**fields: Any) -> dict[str, Any]:
    return {
        "supplier": "acme-supplies",
        "supplier_reference": unique("ASN-"),
        "location_id": "wh-1",
        "expected_date": "2026-12-05",
        "lines": [{"sku": "MUG", "quantity": 40}, {"sku": "TSHIRT-M", "quantity": 12}],
        **fields,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def catalogue(live: Running) -> None:
    """The SKUs these notices announce, in sync-service's catalogue (as product-service's events leave it)."""
    async with live.database.session() as session:
        for sku in ("MUG", "TSHIRT-M"):
            await session.merge(CatalogVariant(sku=sku, product_id=f"p-{sku}", gtin=None, attributes={}))
        await session.commit()


def writer(live: Running) -> dict[str, str]:
    return live.tokens.auth_header("inventory:write", "sync:read")


async def _events(live: Running, inbound_id: str) -> list[str]:
    async with live.database.session() as session:
        rows = await session.execute(
            select(col(OutboxMessage.event_type))
            .where(col(OutboxMessage.key) == inbound_id)
            .order_by(col(OutboxMessage.id))
        )
        return list(rows.scalars())


async def test_a_notice_is_announced_once_by_its_supplier_reference(live: Running) -> None:
    body = notice()

    first = await live.client.post("/v1/inbound", json=body, headers=writer(live))
    again = await live.client.post("/v1/inbound", json=body, headers=writer(live))
    changed = await live.client.post(
        "/v1/inbound", json={**body, "expected_date": "2026-12-09"}, headers=writer(live)
    )

    assert first.status_code == 201, first.text
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.json()["id"] == first.json()["id"]
    assert changed.status_code == 409
    assert first.json()["status"] == "announced"
    assert await _events(live, first.json()["id"]) == ["ecom.inbound.announced.v1"]


async def test_concurrent_announcements_of_one_reference_create_one_delivery(live: Running) -> None:
    body = notice()

    responses = await asyncio.gather(
        *(live.client.post("/v1/inbound", json=body, headers=writer(live)) for _ in range(EACH))
    )

    assert sorted(r.status_code for r in responses) == [200] * (EACH - 1) + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _events(live, responses[0].json()["id"]) == ["ecom.inbound.announced.v1"]


async def test_a_delivery_is_received_once_even_when_receipts_race(live: Running) -> None:
    created = (await live.client.post("/v1/inbound", json=notice(), headers=writer(live))).json()
    url = f"/v1/inbound/{created['id']}/receipt"

    responses = await asyncio.gather(
        *(
            live.client.post(url, json={"lines": [{"sku": "MUG", "quantity": 38}]}, headers=writer(live))
            for _ in range(EACH)
        )
    )

    assert sorted(r.status_code for r in responses) == [200] + [409] * (EACH - 1)
    read = (await live.client.get(f"/v1/inbound/{created['id']}", headers=writer(live))).json()
    assert read["status"] == "received"
    assert read["received_lines"] == [{"sku": "MUG", "quantity": 38}]
    assert await _events(live, created["id"]) == ["ecom.inbound.announced.v1", "ecom.inbound.received.v1"]


async def test_a_line_of_an_unknown_sku_is_refused_422_at_announcement_and_receipt(live: Running) -> None:
    lines = [{"sku": "MUG", "quantity": 1}, {"sku": "NO-SUCH-SKU", "quantity": 2}]
    announced = await live.client.post("/v1/inbound", json=notice(lines=lines), headers=writer(live))
    created = (await live.client.post("/v1/inbound", json=notice(), headers=writer(live))).json()
    received = await live.client.post(
        f"/v1/inbound/{created['id']}/receipt", json={"lines": lines}, headers=writer(live)
    )

    for refused in (announced, received):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "NO-SUCH-SKU" in refused.json()["detail"]
        assert [error["field"] for error in refused.json()["errors"]] == ["body.lines.1.sku"]
    read = (await live.client.get(f"/v1/inbound/{created['id']}", headers=writer(live))).json()
    assert read["status"] == "announced"
    assert await _events(live, created["id"]) == ["ecom.inbound.announced.v1"]


async def test_a_receipt_time_without_an_offset_is_published_as_utc(live: Running) -> None:
    """A received_at without an offset used to leave in ecom.inbound.received.v1 without one, and a
    consumer comparing it with its own aware times fails on it (analytics-service dead-lettered such
    orders); it is taken as UTC and published with its offset."""
    created = (await live.client.post("/v1/inbound", json=notice(), headers=writer(live))).json()
    arrived = datetime.now(UTC).replace(microsecond=0)

    received = await live.client.post(
        f"/v1/inbound/{created['id']}/receipt",
        json={"received_at": arrived.replace(tzinfo=None).isoformat()},
        headers=writer(live),
    )

    assert received.status_code == 200, received.text
    async with live.database.session() as session:
        payload = (
            await session.execute(
                select(col(OutboxMessage.payload)).where(
                    col(OutboxMessage.key) == created["id"],
                    col(OutboxMessage.event_type) == "ecom.inbound.received.v1",
                )
            )
        ).scalar_one()
    published = datetime.fromisoformat(json.loads(payload)["data"]["received_at"])
    assert published == arrived
    assert published.tzinfo is not None


async def test_a_receipt_dated_in_the_future_is_refused_422(live: Running) -> None:
    created = (await live.client.post("/v1/inbound", json=notice(), headers=writer(live))).json()

    refused = await live.client.post(
        f"/v1/inbound/{created['id']}/receipt",
        json={"received_at": "2150-01-01T00:00:00Z"},
        headers=writer(live),
    )

    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["body.received_at"]
    assert (await live.client.get(f"/v1/inbound/{created['id']}", headers=writer(live))).json()[
        "status"
    ] == "announced"


async def test_a_receipt_dated_before_its_announcement_is_refused_422(live: Running) -> None:
    """A delivery announced now was received with received_at a day earlier: the notice and its receipt
    told opposite stories of what came first. A few minutes earlier is the sender's clock, and stays."""
    created = (await live.client.post("/v1/inbound", json=notice(), headers=writer(live))).json()
    announced = datetime.fromisoformat(created["created_at"])
    url = f"/v1/inbound/{created['id']}/receipt"

    refused = await live.client.post(
        url, json={"received_at": (announced - timedelta(days=1)).isoformat()}, headers=writer(live)
    )
    state = (await live.client.get(f"/v1/inbound/{created['id']}", headers=writer(live))).json()["status"]
    skewed = await live.client.post(
        url, json={"received_at": (announced - timedelta(minutes=2)).isoformat()}, headers=writer(live)
    )

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in refused.json()["errors"]] == ["body.received_at"]
    assert "before the delivery was announced" in refused.json()["detail"]
    assert state == "announced"
    assert skewed.status_code == 200, skewed.text
    assert await _events(live, created["id"]) == ["ecom.inbound.announced.v1", "ecom.inbound.received.v1"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": []}, "body.lines"),
        ({"lines": [{"sku": "MUG", "quantity": 0}]}, "body.lines.0.quantity"),
        ({"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}]}, "body.lines"),
        ({"supplier": "Not A Code"}, "body.supplier"),
        ({"expected_date": "3000-01-01"}, "body.expected_date"),
    ],
)
async def test_a_malformed_notice_is_refused_422(live: Running, change: dict[str, Any], field: str) -> None:
    response = await live.client.post("/v1/inbound", json=notice(**change), headers=writer(live))

    assert response.status_code == 422
    assert any(error["field"].startswith(field) for error in response.json()["errors"]), response.json()


async def test_announcing_needs_inventory_write(live: Running) -> None:
    response = await live.client.post("/v1/inbound", json=notice(), headers=live.reader)

    assert response.status_code == 403
