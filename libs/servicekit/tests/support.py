"""Tables, handlers and broker helpers shared by servicekit's tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from contracts import CloudEvent
from servicekit.db import Database
from servicekit.events import ConsumerSpec, EventConsumer, RetryPolicy
from servicekit.events.kafka import ensure_topics, with_dead_letters

TEST_TYPE = "ecom.test.happened.v1"


class Effect(SQLModel, table=True):
    __tablename__ = "test_effects"

    id: int | None = Field(default=None, primary_key=True)
    scope: str
    key: str
    seq: int
    event_id: str


class CounterRow(SQLModel, table=True):
    __tablename__ = "test_counters"

    name: str = Field(primary_key=True)
    value: int


class Item(SQLModel, table=True):
    __tablename__ = "test_items"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    version: int


def new_scope() -> str:
    return uuid.uuid4().hex[:12]


def make_event(key: str, seq: int = 1, **data: object) -> CloudEvent:
    return CloudEvent(source="/servicekit-tests", type=TEST_TYPE, subject=key, sequence=seq, data=data)


def keyed(events: list[CloudEvent]) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs for producing events raw, keyed by subject."""
    return [(event.subject.encode(), event.to_json_bytes()) for event in events]


async def new_topic(bootstrap: str, partitions: int = 3) -> str:
    topic = f"test.{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, with_dead_letters([topic]), partitions=partitions)
    return topic


async def record_effect(session: AsyncSession, event: CloudEvent) -> None:
    """Handler: one row per handled event, in handling order."""
    session.add(
        Effect(
            scope=str(event.data.get("scope", "")),
            key=event.subject,
            seq=event.sequence or 0,
            event_id=event.id,
        )
    )


async def increment_counter(session: AsyncSession, event: CloudEvent) -> None:
    """Handler that is not idempotent by itself: only the inbox keeps it to one effect."""
    row = await session.get(CounterRow, event.subject)
    if row is None:
        session.add(CounterRow(name=event.subject, value=1))
    else:
        row.value += 1


async def effects(database: Database, scope: str) -> list[Effect]:
    async with database.sessionmaker() as session:
        result = await session.execute(
            select(Effect).where(Effect.scope == scope).order_by(Effect.id)  # type: ignore[arg-type]
        )
        return list(result.scalars().all())


async def wait_until(
    predicate: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.05
) -> None:
    """Poll a predicate until it is truthy; fail at `timeout` (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout: float = 30.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read every partition of `topic` from the beginning (no consumer group) until `until(records)`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"topic {topic}: condition not met within {timeout}s ({len(records)} read)"
                )
            batch = await consumer.getmany(timeout_ms=100)
            for batch_records in batch.values():
                records.extend(batch_records)
        return records
    finally:
        await consumer.stop()


async def read_all(
    bootstrap: str, topic: str, *, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic` now: read each partition up to its high watermark."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while True:
            for batch_records in (await consumer.getmany(timeout_ms=100)).values():
                records.extend(batch_records)
            done = True
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is None or await consumer.position(tp) < highwater:
                    done = False
            if done:
                return records
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic}: not read to the end within {timeout}s")
    finally:
        await consumer.stop()


async def produce_raw(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def running(*workers: Callable[[asyncio.Event], Awaitable[None]]) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker(stop)) for worker in workers]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def consumer_for(
    database: Database,
    bootstrap: str,
    producer: AIOKafkaProducer,
    topic: str,
    handler: Callable[[AsyncSession, CloudEvent], Awaitable[None]],
    *,
    max_retries: int = 3,
) -> EventConsumer:
    spec = ConsumerSpec(name=f"c-{topic}", handlers={TEST_TYPE: handler}, topics=[topic])
    return EventConsumer(
        spec,
        database,
        bootstrap_servers=bootstrap,
        dlq_producer=producer,
        retry=RetryPolicy(max_retries=max_retries, backoff=0.01, backoff_max=0.05),
        session_timeout_ms=3000,
    )
