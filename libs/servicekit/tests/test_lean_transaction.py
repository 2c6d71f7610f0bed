"""`Database.transaction()`: a lean transaction of Core statements, on SQLite (make test) and PostgreSQL
(make test-pg): what it commits and rolls back, how it stores values, its errors, its races, its events."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import ArgumentError, IntegrityError

from contracts import CloudEvent
from servicekit.db import Database
from servicekit.events import OutboxMessage, OutboxRelay, outbox

from .support import CounterRow, Item, make_event, new_topic, read_topic, running

COUNTERS = CounterRow.__table__  # type: ignore[attr-defined]
ITEMS = Item.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]

ADD_COUNTER = insert(COUNTERS)
TAKE_ONE = (
    update(COUNTERS)
    .where(COUNTERS.c.name == bindparam("counter"), COUNTERS.c.value >= 1)
    .values(value=COUNTERS.c.value - 1)
)
VALUE_OF = select(COUNTERS.c.value).where(COUNTERS.c.name == bindparam("counter"))
ADD_ITEM = insert(ITEMS)
OUTBOX_ROW = select(OUTBOX.c.created_at, OUTBOX.c.payload, OUTBOX.c.attempts).where(
    OUTBOX.c.event_id == bindparam("event_id")
)


def counter_name() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


async def new_counter(database: Database, value: int) -> str:
    """A counter of a name of its own holding `value`, written in a lean transaction."""
    name = counter_name()
    async with database.transaction() as transaction:
        await transaction.execute(ADD_COUNTER, {"name": name, "value": value})
    return name


async def value_of(database: Database, name: str) -> int | None:
    async with database.read() as connection:
        return await connection.scalar(select(COUNTERS.c.value).where(COUNTERS.c.name == name))


async def test_a_committed_lean_transaction_keeps_its_rows_and_one_that_raises_keeps_none(
    database: Database,
) -> None:
    kept, dropped = counter_name(), counter_name()
    async with database.transaction() as transaction:
        assert await transaction.execute(ADD_COUNTER, {"name": kept, "value": 3}) == 1
        assert await transaction.fetch(VALUE_OF, {"counter": kept}) == [(3,)]  # its own write, unread yet

    async def failing_change() -> None:
        async with database.transaction() as transaction:
            await transaction.execute(ADD_COUNTER, {"name": dropped, "value": 1})
            raise RuntimeError("a business rule failed after the write")

    with pytest.raises(RuntimeError, match="rule"):
        await failing_change()
    assert await value_of(database, kept) == 3
    assert await value_of(database, dropped) is None


async def test_values_are_stored_and_read_as_a_session_stores_and_reads_them(database: Database) -> None:
    by_session, by_transaction = make_event("stored", 1, n=1), make_event("stored", 2, n=2)
    async with database.session() as session:
        await outbox.add(session, by_session, topic="test.stored")
    async with database.transaction() as transaction:
        await outbox.add(transaction, by_transaction, topic="test.stored")
        # The aware UTC moment, the bytes and the constant default (attempts = 0) as the session's.
        rows = await transaction.fetch(OUTBOX_ROW, {"event_id": by_transaction.id})
    (created_at, payload, attempts) = rows[0]
    assert created_at.tzinfo is not None
    assert created_at.utcoffset().total_seconds() == 0
    assert CloudEvent.from_json_bytes(payload).id == by_transaction.id
    assert attempts == 0
    async with database.sessionmaker() as session:
        stored = {
            row.event_id: row
            for row in await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.event_id.in_([by_session.id, by_transaction.id])  # type: ignore[attr-defined]
                )
            )
        }
    assert {type(row.created_at) for row in stored.values()} == {type(created_at)}
    assert stored[by_transaction.id].created_at == created_at
    assert stored[by_transaction.id].published_at is None
    assert abs((stored[by_transaction.id].created_at - stored[by_session.id].created_at).total_seconds()) < 60
    # On SQLite the moments are stored as the same text, so they order and compare in SQL alike.
    async with database.read() as connection:
        texts = (
            await connection.execute(
                text("SELECT typeof(created_at), length(created_at) FROM outbox WHERE event_id IN (:a, :b)"),
                {"a": by_session.id, "b": by_transaction.id},
            )
            if database.is_sqlite
            else None
        )
        if texts is not None:
            assert len(set(texts.all())) == 1


async def test_a_broken_constraint_raises_sqlalchemys_integrity_error_and_the_pool_stays_usable(
    database: Database,
) -> None:
    name = await new_counter(database, 1)
    for _ in range(3):  # more attempts than a broken connection handed back could survive
        with pytest.raises(IntegrityError):
            async with database.transaction() as transaction:
                await transaction.execute(ADD_COUNTER, {"name": name, "value": 2})
    async with database.transaction() as transaction:
        assert await transaction.execute(TAKE_ONE, {"counter": name}) == 1
    assert await value_of(database, name) == 0


async def test_a_missing_value_or_a_default_computed_in_python_is_refused_before_anything_is_written(
    database: Database,
) -> None:
    name = counter_name()

    async def without_a_value() -> None:
        async with database.transaction() as transaction:
            await transaction.execute(ADD_COUNTER, {"name": name, "value": 1})
            await transaction.execute(TAKE_ONE, {})

    with pytest.raises(ArgumentError, match="counter"):
        await without_a_value()
    assert await value_of(database, name) is None
    # `created_at` has no default at all, `event_id` neither: an INSERT names every column it fills.
    with pytest.raises(IntegrityError):
        async with database.transaction() as transaction:
            await transaction.execute(
                insert(OUTBOX),
                {"event_id": "no-moment", "event_type": "t", "topic": "t", "key": "k", "payload": b"{}"},
            )


async def test_racing_compare_and_sets_in_lean_transactions_and_sessions_take_each_unit_once(
    database: Database,
) -> None:
    stock, racers = 5, 24
    name = await new_counter(database, stock)

    async def by_transaction() -> bool:
        async with database.transaction() as transaction:
            return await transaction.execute(TAKE_ONE, {"counter": name}) == 1

    async def by_session() -> bool:
        async with database.session() as session:
            result = await session.execute(TAKE_ONE, {"counter": name})
            return result.rowcount == 1  # type: ignore[attr-defined]

    outcomes = await asyncio.gather(*(by_transaction() if i % 2 else by_session() for i in range(racers)))
    assert sum(outcomes) == stock
    assert await value_of(database, name) == 0


async def test_many_rows_in_one_statement_and_a_delete_count_what_they_changed(database: Database) -> None:
    prefix = f"item-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{i}" for i in range(5)]
    async with database.transaction() as transaction:
        await transaction.executemany(ADD_ITEM, [{"name": n, "version": i} for i, n in enumerate(names)])
        removed = await transaction.execute(  # values in the statement itself, none given by the caller
            delete(ITEMS).where(ITEMS.c.name.like(f"{prefix}-%"), ITEMS.c.version < 2)
        )
        with pytest.raises(ValueError, match="expanding IN"):  # a list's length changes the SQL text
            await transaction.execute(delete(ITEMS).where(ITEMS.c.name.in_(names)))
    assert removed == 2
    async with database.read() as connection:
        left = await connection.scalar(select(func.count()).select_from(ITEMS).where(ITEMS.c.name.in_(names)))
    assert left == 3


async def test_an_event_staged_in_a_lean_transaction_wakes_the_relay_on_commit_and_only_then(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic = await new_topic(kafka_bootstrap)
    doomed, event = make_event("lean", 1), make_event("lean", 2)
    # A relay that would look on its own only after a minute: the commit is what wakes it.
    relay = OutboxRelay(database, producer, poll_interval=60.0)
    async with running(relay.run):
        await asyncio.sleep(0.2)  # its first, empty round is over

        async def rolled_back() -> None:
            async with database.transaction() as transaction:
                await outbox.add(transaction, doomed, topic=topic)
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            await rolled_back()
        started = time.monotonic()
        async with database.transaction() as transaction:
            await outbox.add(transaction, event, topic=topic)
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 1, timeout=20)
        waited = time.monotonic() - started
    assert [CloudEvent.from_json_bytes(r.value or b"").id for r in records] == [event.id]
    assert waited < 20  # far below the relay's own 60 s look: woken by the commit (a bound, not a timing)


class LoopTicks:
    """Counts the event loop's turns every 10 ms while running: how much the loop was left to run."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self._task.cancel()


async def locked_sqlite(path: Path) -> tuple[Database, sqlite3.Connection]:
    """A SQLite database with the counters table, and another connection (another process's writer, as
    far as the database can tell) holding its write lock until it commits."""
    database = Database(f"sqlite+aiosqlite:///{path}")
    async with database.engine.begin() as connection:
        await connection.run_sync(COUNTERS.create)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return database, other


async def test_on_sqlite_a_lean_transaction_waits_for_another_process_lock_without_holding_the_loop(
    tmp_path: Path,
) -> None:
    name = counter_name()
    database, other = await locked_sqlite(tmp_path / "locked.db")

    async def write() -> None:
        async with database.transaction() as transaction:
            await transaction.execute(ADD_COUNTER, {"name": name, "value": 7})

    loop = LoopTicks()
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.5)
    assert not writing.done()
    ticks_while_waiting = loop.ticks
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writing, 30)
    loop.stop()
    assert ticks_while_waiting >= 10  # the loop ran on while the write waited in the connection's thread
    assert await value_of(database, name) == 7
    await database.dispose()


class CountingRelay(OutboxRelay):
    """A relay that counts its wake-ups."""

    wakes = 0

    def wake(self) -> None:
        self.wakes += 1
        super().wake()


async def test_a_commit_that_staged_events_wakes_the_relays_of_its_own_database_only(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = await new_topic(kafka_bootstrap)
    elsewhere = Database(f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}")
    async with elsewhere.engine.begin() as connection:
        await connection.run_sync(OUTBOX.create)
    mine = CountingRelay(database, producer, poll_interval=60.0)
    other = CountingRelay(elsewhere, producer, poll_interval=60.0)
    async with running(mine.run, other.run):
        await asyncio.sleep(0.2)
        async with database.session() as session:
            await outbox.add(session, make_event("wake", 1), topic=topic)
        async with database.transaction() as transaction:
            await outbox.add(transaction, make_event("wake", 2), topic=topic)
        await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 2, timeout=20)
    assert mine.wakes >= 2
    assert other.wakes == 0
    await elsewhere.dispose()


async def test_on_a_threaded_sqlite_engine_a_lean_transaction_commits_and_leaves_the_busy_timeout(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'threaded.db'}", sqlite_inline=False)
    async with database.engine.begin() as connection:
        await connection.run_sync(COUNTERS.create)
    name = counter_name()
    async with database.transaction() as transaction:
        await transaction.execute(ADD_COUNTER, {"name": name, "value": 4})
        assert await transaction.execute(TAKE_ONE, {"counter": name}) == 1
    assert await value_of(database, name) == 3
    async with database.read() as connection:
        assert await connection.scalar(text("PRAGMA busy_timeout")) == 30_000
    await database.dispose()


async def test_a_lean_transaction_cancelled_while_waiting_for_a_lock_leaves_the_loop_and_the_pool_usable(
    tmp_path: Path,
) -> None:
    database, other = await locked_sqlite(tmp_path / "cancelled.db")
    cancelled, kept = counter_name(), counter_name()

    async def write() -> None:
        async with database.transaction() as transaction:
            await transaction.execute(ADD_COUNTER, {"name": cancelled, "value": 1})

    writing = asyncio.create_task(write())
    await asyncio.sleep(0.3)  # its INSERT waits for the lock in the connection's thread
    writing.cancel()  # a client gone, say
    loop = LoopTicks()
    await asyncio.sleep(0.5)  # the cancelled transaction ends while the INSERT still waits in the thread
    ticks_while_ending = loop.ticks
    other.execute("COMMIT")
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(writing, 30)
    loop.stop()
    # Ending it did not hold the event loop (a rollback in the loop's thread would wait on the statement),
    # and the write turn and the pool serve the next writer.
    assert ticks_while_ending >= 10
    async with asyncio.timeout(30), database.transaction() as transaction:
        await transaction.execute(ADD_COUNTER, {"name": kept, "value": 2})
    assert await value_of(database, kept) == 2
    assert await value_of(database, cancelled) is None
    await database.dispose()


async def test_a_lean_transaction_cancelled_while_it_waits_for_another_writer_changes_nothing(
    database: Database,
) -> None:
    name = await new_counter(database, 5)
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:  # takes one unit and keeps its transaction open (its row lock, its turn)
        async with database.transaction() as transaction:
            await transaction.execute(TAKE_ONE, {"counter": name})
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with database.transaction() as transaction:
            await transaction.execute(TAKE_ONE, {"counter": name})

    holding_task = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), 30)
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0.3)  # it waits: for the row on PostgreSQL, for the write turn on SQLite
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 30)
    release.set()
    await asyncio.wait_for(holding_task, 30)
    async with asyncio.timeout(30), database.transaction() as transaction:
        assert await transaction.execute(TAKE_ONE, {"counter": name}) == 1
    assert await value_of(database, name) == 3  # the holder's unit and the last one: not the cancelled one


async def test_a_lean_transaction_holds_no_write_turn_before_its_first_statement(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'turn.db'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(COUNTERS.create)
        await connection.run_sync(OUTBOX.create)
    staged, meanwhile = counter_name(), counter_name()
    async with database.transaction() as transaction:
        # Staged only (as the track API's events are while it checks its input): no statement has run.
        transaction.stage(ADD_COUNTER, {"name": staged, "value": 1})
        started = time.monotonic()
        async with database.session() as session:  # another writer is not kept waiting for the turn
            await session.execute(ADD_COUNTER, {"name": meanwhile, "value": 2})
        waited = time.monotonic() - started
    assert waited < 1.5  # the turn's own timeout is 2 s: a writer kept out would wait it (a bound)
    assert await value_of(database, meanwhile) == 2
    assert await value_of(database, staged) == 1
    await database.dispose()
