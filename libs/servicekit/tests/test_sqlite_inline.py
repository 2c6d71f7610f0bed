"""SQLite statements run in the event loop's thread (`_InlineConnection`) without ever holding the loop
for long: a connection that meets another's write lock waits in aiosqlite's thread, a long SELECT is
interrupted and finished there (and remembered), and an interrupted SELECT leaves its transaction whole."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

from servicekit import db as servicekit_db
from servicekit.db import Database

from .support import Item

# A SELECT that runs for a few hundred milliseconds on any machine (3 million rows of a recursive CTE).
LONG_SELECT = (
    "SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
    "SELECT x FROM c)"
)


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    return tmp_path / "inline.db"


@pytest.fixture
async def database(path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{path}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Item.metadata.create_all, tables=[Item.__table__])  # type: ignore[attr-defined]
    yield database
    await database.dispose()


class Ticker:
    """Ticks every millisecond on the event loop; the longest gap tells how long the loop was held."""

    def __init__(self) -> None:
        self.ticks = 0
        self.longest_gap = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest_gap = max(self.longest_gap, now - last)
            self.ticks += 1
            last = now

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def count_named(database: Database, name: str) -> int:
    async with database.sessionmaker() as session:
        found = await session.scalar(select(func.count()).select_from(Item).where(col(Item.name) == name))
        return int(found or 0)


async def test_the_default_connection_runs_statements_inline_with_no_busy_timeout(database: Database) -> None:
    async with database.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert type(raw.dbapi_connection) is servicekit_db._InlineConnection
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 0


async def test_a_writer_meeting_another_connections_lock_waits_off_the_loop(
    database: Database, path: Path
) -> None:
    """Two engines on one file (each with its own write turn, so SQLite's lock decides): the second
    writer meets the first's lock, waits in aiosqlite's thread while the loop runs on (the first commits
    from the loop), then writes."""
    other = Database(f"sqlite+aiosqlite:///{path}")
    first, second = f"first-{uuid.uuid4().hex[:6]}", f"second-{uuid.uuid4().hex[:6]}"
    try:
        async with database.session() as holder:
            holder.add(Item(name=first, version=1))
            await holder.flush()  # holds SQLite's write lock until the block ends

            async def write_second() -> None:
                async with other.session() as session:
                    session.add(Item(name=second, version=1))

            with Ticker() as ticker:
                waiter = asyncio.create_task(write_second())
                await asyncio.sleep(0.3)
                assert not waiter.done()  # it waits for the lock...
                assert ticker.ticks >= 30  # ...and the loop kept running meanwhile
        await asyncio.wait_for(waiter, 10)  # the holder committed: the second writer went on
        assert await count_named(database, first) == 1
        assert await count_named(database, second) == 1
    finally:
        await other.dispose()


async def test_a_long_select_is_finished_off_the_loop_and_remembered(database: Database) -> None:
    statement = LONG_SELECT.format(n=3_000_000 + uuid.uuid4().int % 1000)  # a text of its own
    assert statement not in servicekit_db._slow_statements
    with Ticker() as ticker:
        began = time.perf_counter()
        async with database.read() as conn:
            result = (await conn.execute(text(statement))).scalar()
        took = time.perf_counter() - began
    assert result == int(statement.split("x < ")[1].split(")")[0])
    assert statement in servicekit_db._slow_statements
    # Held for the inline budget, not for the query: the loop ticked all along.
    assert ticker.longest_gap < took / 3, (ticker.longest_gap, took)


async def test_an_interrupted_select_leaves_its_transaction_whole(database: Database) -> None:
    name = f"kept-{uuid.uuid4().hex[:6]}"
    statement = LONG_SELECT.format(n=2_000_000 + uuid.uuid4().int % 1000)
    async with database.session() as session:
        session.add(Item(name=name, version=1))
        await session.flush()  # written, inside the transaction
        assert (await session.execute(text(statement))).scalar() is not None
        assert statement in servicekit_db._slow_statements  # it was interrupted and finished in the thread
        assert (
            await session.scalar(select(func.count()).select_from(Item).where(col(Item.name) == name))
        ) == 1
    assert await count_named(database, name) == 1
