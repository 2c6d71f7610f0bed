"""Helpers shared by product-service tests: unique data, API shortcuts, reading events off topics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import CloudEvent
from contracts.schemas import validate_event_json
from servicekit.testing import TestTokenIssuer

EVENT_TIMEOUT_S = 20.0


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


async def wait_for_events(
    bootstrap: str,
    topic: str,
    predicate: Callable[[CloudEvent], bool],
    *,
    count: int = 1,
    timeout: float = EVENT_TIMEOUT_S,
) -> list[CloudEvent]:
    """Read `topic` from the beginning until `count` events match `predicate`; each is contract-checked."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await consumer.start()
    found: list[CloudEvent] = []
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic} does not exist")
            if not partitions:
                await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while len(found) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"saw {len(found)} of {count} matching events on {topic}")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    event = validate_event_json(record.value or b"", topic=topic)
                    if predicate(event):
                        found.append(event)
    finally:
        await consumer.stop()
    return found


async def produce(bootstrap: str, topic: str, events: list[CloudEvent]) -> None:
    """Publish events raw, keyed by subject, as another service would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, event.to_json_bytes(), key=event.subject.encode())
    finally:
        await producer.stop()


async def eventually(check: Callable[[], Any], *, timeout: float = EVENT_TIMEOUT_S) -> Any:
    """Poll an async check until it returns a truthy value (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


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
