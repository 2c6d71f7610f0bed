"""The event guarantees, against the real broker, on SQLite (make test) and PostgreSQL (make test-pg)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
from collections import Counter, defaultdict

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import CloudEvent
from contracts.docs import DLQ_HEADERS
from contracts.topics import dlq_topic
from servicekit.db import Database
from servicekit.events import (
    InboxEntry,
    OutboxMessage,
    OutboxRelay,
    outbox,
)
from servicekit.testing import using_postgres

from .support import (
    CounterRow,
    consumer_for,
    effects,
    increment_counter,
    keyed,
    make_event,
    new_scope,
    new_topic,
    produce_raw,
    read_all,
    read_topic,
    record_effect,
    running,
    wait_until,
)


async def test_rolled_back_transaction_publishes_nothing(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    doomed, marker = make_event("k1", 1), make_event("k1", 2)

    async def failing_change() -> None:
        async with database.session() as session:
            await outbox.add(session, doomed, topic=topic)
            raise RuntimeError("business rule failed after the event was staged")

    with pytest.raises(RuntimeError):
        await failing_change()
    async with database.session() as session:
        await outbox.add(session, marker, topic=topic)

    relay = OutboxRelay(database, producer)
    async with running(relay.run):
        records = await read_topic(
            kafka_bootstrap,
            topic,
            until=lambda rs: any(r.value and marker.id.encode() in r.value for r in rs),
        )
    ids = [CloudEvent.from_json_bytes(r.value or b"").id for r in records]
    assert ids == [marker.id]
    async with database.sessionmaker() as session:
        assert await session.scalar(select(OutboxMessage).where(OutboxMessage.event_id == doomed.id)) is None


async def test_event_committed_before_a_crash_is_published_after_restart(
    database: Database, database_url: str, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    event = make_event("order-7", 1)
    # A separate process commits the state change with its outbox row, then is killed (SIGKILL)
    # before any relay of it could publish.
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from contracts import CloudEvent
        from servicekit.db import Database
        from servicekit.events import outbox

        async def main():
            db = Database({database_url!r})
            async with db.session() as session:
                event = CloudEvent.model_validate_json({event.model_dump_json()!r})
                await outbox.add(session, event, topic={topic!r})
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(crashed.communicate(), 60)
    assert crashed.returncode == -signal.SIGKILL, stderr.decode()
    assert await read_all(kafka_bootstrap, topic) == []

    relay = OutboxRelay(database, producer)  # the restarted process
    async with running(relay.run):
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 1)
    assert CloudEvent.from_json_bytes(records[0].value or b"").id == event.id
    async with database.sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.event_id == event.id))
    assert row is not None
    assert row.published_at is not None


async def test_event_delivered_twice_has_its_effect_once(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    counter_name = f"counter-{new_scope()}"
    event, marker = make_event(counter_name, 1), make_event(counter_name, 2)
    payload = event.to_json_bytes()
    await produce_raw(
        kafka_bootstrap,
        topic,
        [
            (counter_name.encode(), payload),
            (counter_name.encode(), payload),
            (counter_name.encode(), marker.to_json_bytes()),
        ],
    )
    consumer = consumer_for(database, kafka_bootstrap, producer, topic, increment_counter)

    async def marker_done() -> bool:
        async with database.sessionmaker() as session:
            return await session.get(InboxEntry, (consumer.spec.name, marker.id)) is not None

    async with running(consumer.run):
        await wait_until(marker_done)
    async with database.sessionmaker() as session:
        row = await session.get(CounterRow, counter_name)
        inbox_rows = await session.scalar(
            select(func.count()).select_from(InboxEntry).where(InboxEntry.event_id == event.id)
        )
    assert row is not None
    assert row.value == 2  # the event once, the marker once: the duplicate had no effect
    assert inbox_rows == 1


async def test_poison_event_is_dead_lettered_after_retries_and_the_partition_moves_on(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    scope = new_scope()
    attempts: Counter[str] = Counter()

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        if event.data.get("poison"):
            attempts[event.id] += 1
            raise ValueError("cannot handle a poisoned event")
        await record_effect(session, event)

    before = make_event("same-key", 1, scope=scope)
    poison = make_event("same-key", 2, scope=scope, poison=True)
    after = make_event("same-key", 3, scope=scope)
    await produce_raw(
        kafka_bootstrap, topic, [(b"same-key", e.to_json_bytes()) for e in (before, poison, after)]
    )

    consumer = consumer_for(database, kafka_bootstrap, producer, topic, handler, max_retries=2)
    async with running(consumer.run):
        await wait_until(lambda: _effect_count(database, scope, 2))
        dead = await read_topic(kafka_bootstrap, dlq_topic(topic), until=lambda rs: len(rs) >= 1)

    assert [e.seq for e in await effects(database, scope)] == [1, 3]
    assert attempts[poison.id] == 3  # the first attempt and two retries
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert CloudEvent.from_json_bytes(dead[0].value or b"").id == poison.id
    assert "cannot handle a poisoned event" in headers["error"]
    assert headers["error_type"] == "ValueError"
    assert headers["attempts"] == "3"
    assert headers["original_topic"] == topic
    assert headers["original_offset"] == "1"
    assert {name for name, _ in DLQ_HEADERS} <= set(headers)  # what docs/events.md promises


async def test_malformed_message_is_dead_lettered_without_stopping_the_consumer(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    scope = new_scope()
    good = make_event("k", 1, scope=scope)
    await produce_raw(
        kafka_bootstrap,
        topic,
        [(b"k", b"{not json"), (b"k", json.dumps({"hello": "world"}).encode()), (b"k", good.to_json_bytes())],
    )
    consumer = consumer_for(database, kafka_bootstrap, producer, topic, record_effect)
    async with running(consumer.run):
        await wait_until(lambda: _effect_count(database, scope, 1))
        dead = await read_topic(kafka_bootstrap, dlq_topic(topic), until=lambda rs: len(rs) >= 2)
    assert [r.value for r in dead] == [b"{not json", b'{"hello": "world"}']
    assert all(dict(r.headers)["error_type"] == b"ValidationError" for r in dead)


async def test_events_staged_in_bulk_publish_in_order_on_commit_and_not_on_rollback(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    doomed = [make_event("bulk", seq) for seq in (1, 2)]
    staged = [make_event("bulk", seq) for seq in (3, 4, 5)]

    async def failing_chunk() -> None:
        async with database.session() as session:
            await outbox.add_many(session, doomed, topic=topic)
            raise RuntimeError("the import chunk failed after its events were staged")

    with pytest.raises(RuntimeError):
        await failing_chunk()
    async with database.session() as session:
        await outbox.add_many(session, staged, topic=topic)

    relay = OutboxRelay(database, producer)
    async with running(relay.run):
        records = await read_topic(
            kafka_bootstrap,
            topic,
            until=lambda rs: any(r.value and staged[-1].id.encode() in r.value for r in rs),
        )
    assert [CloudEvent.from_json_bytes(r.value or b"").id for r in records] == [e.id for e in staged]


async def test_per_key_order_holds_for_1000_events_over_several_partitions(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap, partitions=4)
    scope = new_scope()
    keys = [f"key-{i}" for i in range(25)]
    sequence = [(keys[i % 25], i // 25 + 1) for i in range(1000)]  # interleaved, 40 events per key
    for start in range(0, 1000, 100):
        async with database.session() as session:
            for key, seq in sequence[start : start + 100]:
                await outbox.add(session, make_event(key, seq, scope=scope), topic=topic)

    relay = OutboxRelay(database, producer, batch_size=64)
    consumer = consumer_for(database, kafka_bootstrap, producer, topic, record_effect)
    async with running(relay.run, consumer.run):
        await wait_until(lambda: _effect_count(database, scope, 1000), timeout=120)

    handled: dict[str, list[int]] = defaultdict(list)
    for effect in await effects(database, scope):
        handled[effect.key].append(effect.seq)
    assert handled == {key: list(range(1, 41)) for key in keys}
    partitions_used = {r.partition for r in await read_all(kafka_bootstrap, topic)}
    assert len(partitions_used) > 1


@pytest.mark.postgres
async def test_two_relays_over_one_outbox_publish_each_row_exactly_once(
    database_url: str, kafka_bootstrap: str
) -> None:
    assert using_postgres(), "run with TEST_DATABASE_URL pointing at PostgreSQL (make test-pg)"
    topic = await new_topic(kafka_bootstrap, partitions=4)
    scope = new_scope()
    keys = [f"key-{i}" for i in range(20)]
    staged = [make_event(keys[i % 20], i // 20 + 1, scope=scope) for i in range(1000)]
    writer = Database(database_url)
    for start in range(0, 1000, 100):
        async with writer.session() as session:
            for event in staged[start : start + 100]:
                await outbox.add(session, event, topic=topic)

    relays = []
    for name in ("replica-a", "replica-b"):
        relay_producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await relay_producer.start()
        relays.append(OutboxRelay(Database(database_url), relay_producer, batch_size=25, name=name))
    try:
        async with running(*(r.run for r in relays)):
            await wait_until(lambda: _backlog_is(writer, 0), timeout=120)
    finally:
        for relay in relays:
            await relay.producer.stop()
            await relay.database.dispose()
        await writer.dispose()

    records = await read_all(kafka_bootstrap, topic)
    published = [CloudEvent.from_json_bytes(r.value or b"") for r in records]
    assert Counter(e.id for e in published) == Counter(e.id for e in staged)
    by_key: dict[str, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = CloudEvent.from_json_bytes(record.value or b"")
        by_key[event.subject].append(event.sequence or 0)
    assert by_key == {key: list(range(1, 51)) for key in keys}


async def _effect_count(database: Database, scope: str, at_least: int) -> bool:
    return len(await effects(database, scope)) >= at_least


async def _backlog_is(database: Database, expected: int) -> bool:
    async with database.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))  # type: ignore[union-attr]
        )
    return count == expected


async def test_two_group_members_and_a_member_leaving_still_give_each_effect_once(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap, partitions=4)
    scope = new_scope()
    events = [make_event(f"key-{i % 10}", i // 10 + 1, scope=scope) for i in range(300)]
    first = consumer_for(database, kafka_bootstrap, producer, topic, record_effect)
    second = consumer_for(database, kafka_bootstrap, producer, topic, record_effect)
    stop_first = asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    async with running(second.run):
        await produce_raw(kafka_bootstrap, topic, keyed(events[:150]))
        await wait_until(lambda: _effect_count(database, scope, 50), timeout=60)
        stop_first.set()  # one member leaves mid-stream: its partitions move to the other
        await first_task
        await produce_raw(kafka_bootstrap, topic, keyed(events[150:]))
        await wait_until(lambda: _effect_count(database, scope, 300), timeout=90)

    handled = Counter(effect.event_id for effect in await effects(database, scope))
    assert handled == Counter(e.id for e in events)
