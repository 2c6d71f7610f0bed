"""Test helpers around the broker: read a topic until events match, publish events as another service
would, and poll a condition until it holds (all bounded in time)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import CloudEvent
from contracts.schemas import validate_event_json

EVENT_TIMEOUT_S = 20.0


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


async def produce(bootstrap: str, topic: str, events: list[CloudEvent], *, at_once: bool = False) -> None:
    """Publish events raw, keyed by subject, as another service would: one after the other, each
    acknowledged before the next is sent; or, `at_once`, all handed to the producer together (a burst:
    it goes out in as few requests as the producer batches it into, still in order per key) and then
    every acknowledgement awaited."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        if at_once:
            sent = [await producer.send(topic, e.to_json_bytes(), key=e.subject.encode()) for e in events]
            await asyncio.gather(*sent)
        else:
            for event in events:
                await producer.send_and_wait(topic, event.to_json_bytes(), key=event.subject.encode())
    finally:
        await producer.stop()


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = EVENT_TIMEOUT_S, interval: float = 0.1
) -> Any:
    """Poll an async check until it returns a truthy value (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
