"""Batches on both sides: the relay's pipelined sends and the consumer's one transaction per fetched batch,
against the real broker, on SQLite (make test) and PostgreSQL (make test-pg)."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
import textwrap
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts import CloudEvent
from contracts.topics import dlq_topic
from servicekit.db import Database
from servicekit.events import (
    ConsumerSpec,
    EventConsumer,
    OutboxMessage,
    OutboxRelay,
    RetryPolicy,
    handle_many,
    outbox,
)
from servicekit.events.relay import LINGER_AFTER
from servicekit.testing import using_postgres

from .support import (
    TEST_TYPE,
    CounterRow,
    consumer_for,
    effects,
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


async def _effect_count(database: Database, scope: str, at_least: int) -> bool:
    return len(await effects(database, scope)) >= at_least


@pytest.mark.parametrize("form", ["handler", "handle_many"])
async def test_poison_event_inside_a_batch_does_not_undo_or_block_its_neighbours(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str, form: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    scope = new_scope()
    # One key (one partition, one fetched batch): the poison sits between neighbours of its own key.
    events = [make_event("k", seq, scope=scope, poison=seq == 4) for seq in range(1, 9)]
    poison = events[3]
    await produce_raw(kafka_bootstrap, topic, keyed(events))

    async def one(session: AsyncSession, event: CloudEvent) -> None:
        if event.data.get("poison"):
            raise ValueError("cannot handle a poisoned event")
        await record_effect(session, event)

    async def many(session: AsyncSession, batch: Sequence[CloudEvent]) -> None:
        for event in batch:
            await one(session, event)

    handler = one if form == "handler" else handle_many(many)
    consumer = consumer_for(database, kafka_bootstrap, producer, topic, handler, max_retries=1)
    async with running(consumer.run):
        await wait_until(lambda: _effect_count(database, scope, 7))
        dead = await read_topic(kafka_bootstrap, dlq_topic(topic), until=lambda rs: len(rs) >= 1)
        await asyncio.sleep(0.3)  # anything handled twice would show up by now

    handled = await effects(database, scope)
    assert [e.seq for e in handled] == [1, 2, 3, 5, 6, 7, 8]
    assert Counter(e.event_id for e in handled) == Counter(e.id for e in events if e is not poison)
    assert [CloudEvent.from_json_bytes(r.value or b"").id for r in dead] == [poison.id]


async def test_a_fetched_batch_is_handled_in_a_few_transactions_not_one_per_event(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    scope = new_scope()
    events = [make_event("one-key", seq, scope=scope) for seq in range(1, 61)]
    await produce_raw(kafka_bootstrap, topic, keyed(events))
    consumer = consumer_for(database, kafka_bootstrap, producer, topic, record_effect)
    commits = 0

    def count(session: Session) -> None:
        nonlocal commits
        commits += 1

    with _listening("after_commit", count):
        async with running(consumer.run):
            await wait_until(lambda: _effect_count(database, scope, 60))
    assert [e.seq for e in await effects(database, scope)] == list(range(1, 61))
    assert commits <= 6  # one per fetched batch; one per event would be 60


async def test_handle_many_receives_batches_and_folds_them_into_a_few_rows(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    prefix = new_scope()
    events = [make_event(f"{prefix}-{i % 3}", i // 3 + 1) for i in range(90)]
    await produce_raw(kafka_bootstrap, topic, keyed(events))
    batch_sizes: list[int] = []

    @handle_many
    async def count_per_key(session: AsyncSession, batch: Sequence[CloudEvent]) -> None:
        batch_sizes.append(len(batch))
        for key, n in Counter(e.subject for e in batch).items():
            row = await session.get(CounterRow, key)
            if row is None:
                session.add(CounterRow(name=key, value=n))
            else:
                row.value += n

    consumer = consumer_for(database, kafka_bootstrap, producer, topic, count_per_key)

    async def totals() -> dict[str, int]:
        async with database.sessionmaker() as session:
            rows = await session.scalars(
                select(CounterRow).where(CounterRow.name.startswith(prefix))  # type: ignore[attr-defined]
            )
            return {row.name: row.value for row in rows}

    async def all_counted() -> bool:
        return sum((await totals()).values()) >= 90

    async with running(consumer.run):
        await wait_until(all_counted)
    assert await totals() == {f"{prefix}-{i}": 30 for i in range(3)}
    assert sum(batch_sizes) == 90
    assert max(batch_sizes) > 1


@pytest.mark.parametrize("crash_at", ["mid_batch", "before_offset_commit"])
async def test_crash_in_the_middle_of_a_batch_loses_nothing_and_doubles_nothing(
    database: Database,
    database_url: str,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    crash_at: str,
) -> None:
    topic = await new_topic(kafka_bootstrap)
    scope = new_scope()
    events = [make_event(f"key-{i % 4}", i // 4 + 1, scope=scope) for i in range(80)]
    await produce_raw(kafka_bootstrap, topic, keyed(events))
    group = f"c-{topic}"
    # A separate consumer process is SIGKILLed either while its handler is inside a batch transaction
    # (nothing of that batch committed) or after its batch committed but before the offsets were.
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from sqlalchemy import text
        from aiokafka import AIOKafkaProducer
        from servicekit.db import Database
        from servicekit.events import ConsumerSpec, EventConsumer

        CRASH_AT = {crash_at!r}
        handled = 0

        async def handler(session, event):
            global handled
            handled += 1
            if CRASH_AT == "mid_batch" and handled == 30:
                os.kill(os.getpid(), signal.SIGKILL)
            await session.execute(
                text("INSERT INTO test_effects (scope, key, seq, event_id) VALUES (:s, :k, :q, :e)"),
                {{"s": event.data["scope"], "k": event.subject, "q": event.sequence, "e": event.id}},
            )

        original_commit = EventConsumer.commit

        async def crashing_commit(self, only=None):
            if CRASH_AT == "before_offset_commit" and self._pending and handled:
                os.kill(os.getpid(), signal.SIGKILL)
            await original_commit(self, only)

        EventConsumer.commit = crashing_commit

        async def main():
            producer = AIOKafkaProducer(bootstrap_servers={kafka_bootstrap!r})
            await producer.start()
            spec = ConsumerSpec(name={group!r}, handlers={{{TEST_TYPE!r}: handler}}, topics=[{topic!r}])
            consumer = EventConsumer(spec, Database({database_url!r}), bootstrap_servers={kafka_bootstrap!r},
                                     dlq_producer=producer, session_timeout_ms=3000)
            await asyncio.wait_for(consumer.run(asyncio.Event()), 60)

        asyncio.run(main())
        """
    )
    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(crashed.communicate(), 90)
    assert crashed.returncode == -signal.SIGKILL, stderr.decode()
    before_restart = len(await effects(database, scope))
    if crash_at == "mid_batch":
        assert before_restart < 80
    else:
        assert before_restart > 0

    restarted = EventConsumer(
        ConsumerSpec(name=group, handlers={TEST_TYPE: record_effect}, topics=[topic]),
        database,
        bootstrap_servers=kafka_bootstrap,
        dlq_producer=producer,
        retry=RetryPolicy(max_retries=1, backoff=0.01),
        session_timeout_ms=3000,
    )
    async with running(restarted.run):
        await wait_until(lambda: _effect_count(database, scope, 80), timeout=60)
        await asyncio.sleep(0.3)
    handled = await effects(database, scope)
    assert Counter(e.event_id for e in handled) == Counter(e.id for e in events)
    by_key: dict[str, list[int]] = defaultdict(list)
    for effect in handled:
        by_key[effect.key].append(effect.seq)
    assert by_key == {f"key-{k}": list(range(1, 21)) for k in range(4)}


class _FailingOnce(AIOKafkaProducer):  # type: ignore[misc]
    """A real producer whose first send of one chosen event fails, as a broker timeout would."""

    def __init__(self, failing_event_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failing_event_id = failing_event_id.encode()
        self.failed = False

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> asyncio.Future[Any]:
        headers = dict(kwargs.get("headers") or ())
        if headers.get("ce_id") == self.failing_event_id and not self.failed:
            self.failed = True
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_exception(TimeoutError("batch for this partition expired"))
            return future
        result: asyncio.Future[Any] = await super().send(topic, value, **kwargs)
        return result


async def test_a_failed_send_holds_back_later_rows_of_its_key_but_not_other_keys(
    database: Database, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    a1, a2, b1 = make_event("a", 1), make_event("a", 2), make_event("b", 1)
    async with database.session() as session:
        await outbox.add_many(session, [a1, a2, b1], topic=topic)
    relay_producer = _FailingOnce(a1.id, bootstrap_servers=kafka_bootstrap, acks="all")
    await relay_producer.start()
    try:
        relay = OutboxRelay(database, relay_producer)
        assert await relay.publish_batch() == 1
        assert await _published(database, [a1, a2, b1]) == {a1.id: False, a2.id: False, b1.id: True}
        assert await relay.publish_batch() == 2
        assert await _published(database, [a1, a2, b1]) == {a1.id: True, a2.id: True, b1.id: True}
    finally:
        await relay_producer.stop()
    records = await read_all(kafka_bootstrap, topic)
    key_a = [CloudEvent.from_json_bytes(r.value or b"").id for r in records if r.key == b"a"]
    assert key_a[-2:] == [a1.id, a2.id]  # the resend is in order; a2's first copy came before


async def _published(database: Database, events: list[CloudEvent]) -> dict[str, bool]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.event_id.in_([e.id for e in events]))  # type: ignore[attr-defined]
        )
        return {row.event_id: row.published_at is not None for row in rows}


class _listening:
    """Listen to a Session event for the duration of a `with` block."""

    def __init__(self, name: str, function: Any) -> None:
        self.name, self.function = name, function

    def __enter__(self) -> None:
        sa_event.listen(Session, self.name, self.function)

    def __exit__(self, *_: object) -> None:
        sa_event.remove(Session, self.name, self.function)


async def test_committed_offset_past_the_end_of_a_partition_is_read_from_the_start(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    # As after an in-memory broker restarted: the group's offset points past what the partition holds.
    topic = await new_topic(kafka_bootstrap, partitions=1)
    scope = new_scope()
    group = f"c-{topic}"
    stale = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await stale.start()
    try:
        stale.assign([TopicPartition(topic, 0)])
        await stale.commit({TopicPartition(topic, 0): 10})
    finally:
        await stale.stop()
    events = [make_event("k", seq, scope=scope) for seq in (1, 2)]
    await produce_raw(kafka_bootstrap, topic, keyed(events))
    consumer = consumer_for(database, kafka_bootstrap, producer, topic, record_effect)
    async with running(consumer.run):
        await wait_until(lambda: _effect_count(database, scope, 2))
    assert [e.event_id for e in await effects(database, scope)] == [e.id for e in events]


async def test_relay_wakes_on_a_commit_in_its_process_without_polling(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    relay = OutboxRelay(database, producer, poll_interval=600)  # it would not poll within the test
    async with running(relay.run):
        await asyncio.sleep(0.5)  # its first round found nothing: it now waits
        staged = make_event("woken", 1)
        async with database.session() as session:
            await outbox.add(session, staged, topic=topic)
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 1, timeout=20)
    assert CloudEvent.from_json_bytes(records[0].value or b"").id == staged.id


@pytest.mark.postgres
async def test_relay_wakes_on_notify_from_a_writer_in_another_process(
    database: Database, database_url: str, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    assert using_postgres(), "run with TEST_DATABASE_URL pointing at PostgreSQL (make test-pg)"
    topic = await new_topic(kafka_bootstrap)
    staged = make_event("notified", 1)
    # That process runs no relay of this database, so its commit sends NOTIFY.
    script = textwrap.dedent(
        f"""
        import asyncio
        from contracts import CloudEvent
        from servicekit.db import Database
        from servicekit.events import outbox

        async def main():
            db = Database({database_url!r})
            async with db.session() as session:
                event = CloudEvent.model_validate_json({staged.model_dump_json()!r})
                await outbox.add(session, event, topic={topic!r})
            await db.dispose()

        asyncio.run(main())
        """
    )
    relay = OutboxRelay(database, producer, poll_interval=600)
    async with running(relay.run):
        await asyncio.sleep(0.5)
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(writer.communicate(), 60)
        assert writer.returncode == 0, stderr.decode()
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 1, timeout=20)
    assert CloudEvent.from_json_bytes(records[0].value or b"").id == staged.id


async def test_a_consumers_own_decoding_is_used_and_what_it_rejects_is_dead_lettered_as_malformed(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    """`ConsumerSpec.decode` replaces `CloudEvent.from_json_bytes` for every record (here a subclass, as
    analytics-service decodes its tracked events in one pass); a record it rejects is dead-lettered as
    malformed and its neighbours are handled."""
    topic = await new_topic(kafka_bootstrap)
    scope = new_scope()
    events = [make_event("k", seq, scope=scope) for seq in range(1, 5)]

    class Decoded(CloudEvent):
        pass

    handled_types: list[type] = []

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        handled_types.append(type(event))
        await record_effect(session, event)

    await produce_raw(
        kafka_bootstrap, topic, [*keyed(events[:2]), (b"k", b"not an event"), *keyed(events[2:])]
    )
    consumer = consumer_for(database, kafka_bootstrap, producer, topic, handler)
    consumer.spec = dataclasses.replace(consumer.spec, decode=Decoded.model_validate_json)
    async with running(consumer.run):
        await wait_until(lambda: _effect_count(database, scope, 4))
        dead = await read_topic(kafka_bootstrap, dlq_topic(topic), until=lambda rs: len(rs) >= 1)
    assert [e.seq for e in await effects(database, scope)] == [1, 2, 3, 4]
    assert set(handled_types) == {Decoded}
    assert [r.value for r in dead] == [b"not an event"]
    assert dict(dead[0].headers)["event_type"] == b"malformed"


async def test_under_load_the_relay_lets_the_next_batch_fill_before_publishing_it(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    # Long enough for the five commits below on a slow, loaded machine: at 0.5 s, PostgreSQL's commits on
    # a machine running five times slower than usual outlasted it (batches [10, 10, 4, 1]).
    relay = OutboxRelay(database, producer, linger=3.0)
    batches: list[int] = []
    publish_batch = relay.publish_batch

    async def counted() -> int:
        published = await publish_batch()
        if published:
            batches.append(published)
        return published

    relay.publish_batch = counted  # type: ignore[method-assign]
    events = [make_event("load", seq) for seq in range(1, 2 * LINGER_AFTER + 6)]
    async with database.session() as session:  # as many rows at once as mean load
        await outbox.add_many(session, events[:LINGER_AFTER], topic=topic)
    async with running(relay.run):
        await wait_until(lambda: batches)
        # One such round alone (a stall) does not make the relay linger: the next rows go at once.
        async with database.session() as session:
            await outbox.add_many(session, events[LINGER_AFTER : 2 * LINGER_AFTER], topic=topic)
        await wait_until(lambda: len(batches) == 2)
        for event in events[2 * LINGER_AFTER :]:  # five commits while it lingers: each would wake it
            async with database.session() as session:
                await outbox.add(session, event, topic=topic)
            await asyncio.sleep(0.02)  # time for a relay that does not linger to publish it alone
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= len(events))
    assert batches == [LINGER_AFTER, LINGER_AFTER, 5]
    assert [CloudEvent.from_json_bytes(r.value or b"").id for r in records] == [e.id for e in events]
