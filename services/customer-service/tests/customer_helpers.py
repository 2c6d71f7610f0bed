"""Helpers of customer-service's tests."""

import asyncio
import base64
import os
import random
import string
import time
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import phonenumbers
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import CloudEvent
from contracts.schemas import validate_event
from servicekit.testing import TestTokenIssuer

ALL_SCOPES = ("customers:read", "customers:write", "customers:pii", "orders:write", "privacy:admin")


def unique() -> str:
    return uuid.uuid4().hex[:10]


def new_master_key(kid: str) -> str:
    """A `kid:base64` entry of MASTER_KEYS with a random 256-bit key."""
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def new_email() -> str:
    return f"shopper.{unique()}@example.com"


def new_phone() -> str:
    """A valid French mobile number, different each call."""
    while True:
        number = f"+336{uuid.uuid4().int % 10**8:08d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


def errors_of(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return {error["field"]: error["message"] for error in response.json().get("errors", [])}


async def create_customer(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"first_name": "Ada", "last_name": f"Lovelace{unique()}", **fields}
    response = await client.post(
        "/v1/customers", json=body, headers=tokens.auth_header("customers:write", "customers:pii")
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def events_about(
    bootstrap: str, topic: str, subject: str, types: Iterable[str], timeout: float = 20.0
) -> list[CloudEvent]:
    """Every event on `topic` about `subject`, once all `types` have been seen (or the timeout)."""
    wanted = set(types)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.2)
        assert partitions, f"topic {topic} does not exist"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        seen: list[CloudEvent] = []
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    event = CloudEvent.from_json_bytes(record.value or b"")
                    if event.subject == subject:
                        validate_event(event, topic=topic)
                        seen.append(event)
            if wanted <= {event.type for event in seen}:
                return seen
        return seen
    finally:
        await consumer.stop()


async def dump_all_tables(database_url: str) -> str:
    """Every value of every row of every table, as lower-case text (binary decoded leniently)."""
    from sqlalchemy import inspect, text

    from servicekit.db import Database

    database = Database(database_url)
    parts: list[str] = []
    try:
        async with database.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            for table in tables:
                for row in await conn.execute(text(f'SELECT * FROM "{table}"')):
                    for value in row:
                        if isinstance(value, bytes | memoryview):
                            parts.append(bytes(value).decode("utf-8", "replace"))
                        else:
                            parts.append(str(value))
    finally:
        await database.dispose()
    return "\n".join(parts).lower()


async def run_import(
    client: httpx.AsyncClient,
    tokens: TestTokenIssuer,
    content: bytes,
    filename: str,
    on_error: str | None = None,
) -> dict[str, Any]:
    """Upload a customer import and poll its job until it has finished."""
    headers = tokens.auth_header("customers:write")
    params = {"on_error": on_error} if on_error else {}
    response = await client.post(
        "/v1/imports", params=params, files={"file": (filename, content)}, headers=headers
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    for _ in range(200):
        job = (await client.get(f"/v1/imports/{job['id']}", headers=headers)).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import job did not finish: {job}")


async def duplicate_candidates(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, customer_id: str
) -> list[dict[str, Any]]:
    """The candidate duplicate pairs that involve `customer_id`."""
    response = await client.get(
        "/v1/duplicates", params={"customer_id": customer_id}, headers=tokens.auth_header("customers:read")
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def surname() -> str:
    """A letters-only surname no other test uses and no other test's resembles (names are compared
    letters-only, with Jaro-Winkler, which weighs a shared prefix)."""
    return "".join(random.choices(string.ascii_lowercase, k=12)).capitalize()


def address(street: str = "12 Rue Victor Hugo") -> dict[str, Any]:
    return {"kind": "shipping", "line1": street, "city": "Lyon", "postcode": "69002", "country": "FR"}


async def likely_pair(
    client: httpx.AsyncClient, tokens: TestTokenIssuer
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two profiles that are probably one person, not surely: same surname, a first name spelled
    another way, the same postcode (one without a street), two different emails."""
    last = surname()
    a = await create_customer(
        client,
        tokens,
        first_name="Jonathan",
        last_name=last,
        emails=[{"address": new_email()}],
        phones=[{"number": new_phone()}],
        addresses=[address()],
    )
    b = await create_customer(
        client,
        tokens,
        first_name="Jonathon",
        last_name=last,
        emails=[{"address": f"jon.{last.lower()}@mail.example.org"}],
        addresses=[{"kind": "shipping", "city": "Lyon", "postcode": "69002", "country": "FR"}],
    )
    return a, b
