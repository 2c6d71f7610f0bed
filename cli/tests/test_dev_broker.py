"""The dev stack's broker (`ecom dev`): on disk it keeps events and committed offsets across a restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import CloudEvent
from ecom_cli.commands.dev import BrokerStorage, make_broker
from servicekit.broker import DURABLE_FETCH_MAX_WAIT_MS, EmbeddedBroker, free_port
from servicekit.db import Database
from servicekit.events import ConsumerSpec, EventConsumer, InboxEntry, OutboxMessage, OutboxRelay, outbox
from servicekit.events.kafka import ensure_topics, with_dead_letters
from servicekit.events.status import groups_in_broker_data

EVENT_TYPE = "ecom.test.happened.v1"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    async with db.engine.begin() as connection:
        await connection.run_sync(
            lambda sync: OutboxMessage.metadata.create_all(
                sync,
                tables=[OutboxMessage.__table__, InboxEntry.__table__],  # type: ignore[attr-defined]
            )
        )
    yield db
    await db.dispose()


def event(n: int) -> CloudEvent:
    return CloudEvent(source="/dev-broker-test", type=EVENT_TYPE, subject="order-1", sequence=n, data={})


async def publish(database: Database, bootstrap: str, staged: CloudEvent, topic: str) -> None:
    """Stage `staged` in the outbox and let a relay publish it (the outbox row is marked published)."""
    async with database.session() as session:
        await outbox.add(session, staged, topic=topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        deadline = time.monotonic() + 30
        published = 0
        while published < 1:
            assert time.monotonic() < deadline, "the relay did not publish within 30s"
            published += await OutboxRelay(database, producer).publish_batch()
    finally:
        await producer.stop()


async def consume_until(
    database: Database, broker: EmbeddedBroker, topic: str, handled: list[str], count: int
) -> None:
    """Run the service's consumer until `handled` holds `count` events, then a little longer."""

    async def handler(_session: AsyncSession, received: CloudEvent) -> None:
        handled.append(received.id)

    bootstrap = broker.bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    stop = asyncio.Event()
    consumer = EventConsumer(
        ConsumerSpec(name="dev-consumer", handlers={EVENT_TYPE: handler}, topics=[topic]),
        database,
        bootstrap_servers=bootstrap,
        dlq_producer=producer,
        session_timeout_ms=3000,
        fetch_max_wait_ms=broker.fetch_max_wait_ms,  # as `ecom dev` sets it
    )
    task = asyncio.create_task(consumer.run(stop))
    try:
        deadline = time.monotonic() + 60
        while len(handled) < count:
            assert time.monotonic() < deadline, f"{len(handled)} of {count} events handled within 60s"
            assert not task.done(), task
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a second delivery would show up by now
    finally:
        stop.set()
        await task
        await producer.stop()


async def records_read(
    bootstrap: str, topic: str, *, fetch_max_wait_ms: int, polls: int, expected: int
) -> int:
    """How many records of `topic` (one partition) a consumer without a group reads in `polls` polls."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_max_wait_ms
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        read = 0
        for _ in range(polls):
            batches = await consumer.getmany(timeout_ms=fetch_max_wait_ms + 500)
            read += sum(len(records) for records in batches.values())
            if read >= expected:
                break
        return read
    finally:
        await consumer.stop()


async def committed_offset(bootstrap: str, topic: str, group: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(topic, 0))
        return offset
    finally:
        await consumer.stop()


async def test_event_published_before_a_broker_restart_is_handled_once_after_it(
    tmp_path: Path, database: Database
) -> None:
    port = free_port()
    broker = make_broker(tmp_path, "127.0.0.1", port, storage=BrokerStorage.disk).start()
    try:
        bootstrap = broker.bootstrap_servers
        topic = f"dev.{uuid.uuid4().hex[:8]}"
        await ensure_topics(bootstrap, with_dead_letters([topic]), partitions=1)
        first, second = event(1), event(2)
        await publish(database, bootstrap, first, topic)

        broker.stop()  # Ctrl-C: the broker and its storage server stop before anyone consumed the event
        broker = make_broker(tmp_path, "127.0.0.1", port, storage=BrokerStorage.disk).start()
        handled: list[str] = []
        await consume_until(database, broker, topic, handled, 1)
        assert handled == [first.id]

        broker.stop()
        broker = make_broker(tmp_path, "127.0.0.1", port, storage=BrokerStorage.disk).start()
        assert await committed_offset(bootstrap, topic, "dev-consumer") == 1  # the offset survived too
        await publish(database, bootstrap, second, topic)
        await consume_until(database, broker, topic, handled, 2)
        assert handled == [first.id, second.id]
    finally:
        broker.stop()
    assert broker.data_dir is not None
    assert any(broker.data_dir.rglob("*.batch"))  # the records are files under var/broker
    assert groups_in_broker_data(broker.data_dir) == ["dev-consumer"]  # what `ecom events` lists


async def test_durable_broker_reads_nothing_when_its_storage_listing_outlasts_the_fetch_wait(
    tmp_path: Path,
) -> None:
    """Tansu's s3 engine lists a partition's record objects for each fetch and stops listing when the fetch's
    max wait is spent, answering no records: `ecom dev` gives the services the durable broker's longer wait.
    (With the 20 ms the services used before, the dev stack's consumers read ~1 event/s.)"""
    durable = make_broker(tmp_path, "127.0.0.1", free_port(), storage=BrokerStorage.disk)
    memory = make_broker(tmp_path, "127.0.0.1", free_port(), storage=BrokerStorage.memory)
    assert durable.fetch_max_wait_ms == DURABLE_FETCH_MAX_WAIT_MS > memory.fetch_max_wait_ms
    broker = durable.start()
    try:
        bootstrap = broker.bootstrap_servers
        topic = f"dev.{uuid.uuid4().hex[:8]}"
        await ensure_topics(bootstrap, [topic], partitions=1)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for n in range(3):
                await producer.send_and_wait(topic, event(n).to_json_bytes())
        finally:
            await producer.stop()
        # A listing over HTTP takes more than a millisecond: every fetch comes back empty.
        assert await records_read(bootstrap, topic, fetch_max_wait_ms=1, polls=4, expected=3) == 0
        assert (
            await records_read(
                bootstrap, topic, fetch_max_wait_ms=broker.fetch_max_wait_ms, polls=10, expected=3
            )
            == 3
        )
    finally:
        broker.stop()


async def test_in_memory_broker_loses_its_topics_on_restart(tmp_path: Path) -> None:
    port = free_port()
    broker: EmbeddedBroker = make_broker(tmp_path, "127.0.0.1", port, storage=BrokerStorage.memory).start()
    try:
        topic = f"dev.{uuid.uuid4().hex[:8]}"
        assert await ensure_topics(broker.bootstrap_servers, [topic], partitions=1) == [topic]
        broker.stop()
        broker = make_broker(tmp_path, "127.0.0.1", port, storage=BrokerStorage.memory).start()
        assert await ensure_topics(broker.bootstrap_servers, [topic], partitions=1) == [topic]  # gone
    finally:
        broker.stop()
    assert not (tmp_path / "broker").exists()
