"""SQLite writers of one process take turns (servicekit.db.SQLiteWriteTurn) and every commit lands."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import func, select

from servicekit.db import Database, SQLiteWriteTurn, _acquired_at_once

from .support import Item, new_scope


async def test_concurrent_writers_all_commit_and_rollbacks_give_the_turn_back(database: Database) -> None:
    scope = new_scope()

    async def write(i: int) -> None:
        async with database.session() as session:
            session.add(Item(name=f"{scope}-{i}", version=1))
            await session.flush()
            await asyncio.sleep(0)  # hold the write across a turn of the loop, as a request would
            if i % 5 == 0:
                raise ValueError("rolled back after writing")

    results = await asyncio.gather(*(write(i) for i in range(40)), return_exceptions=True)
    assert sum(isinstance(r, ValueError) for r in results) == 8
    assert all(r is None or isinstance(r, ValueError) for r in results)
    async with database.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Item).where(Item.name.startswith(f"{scope}-"))  # type: ignore[attr-defined]
        )
    assert count == 32
    turn = SQLiteWriteTurn.of(database.engine)
    if database.is_sqlite:
        assert turn is not None
        assert not turn.held
    else:
        assert turn is None  # PostgreSQL has row locks, no single writer lock


async def test_a_free_turn_is_taken_at_once_and_a_queue_is_never_jumped() -> None:
    lock = asyncio.Lock()
    assert _acquired_at_once(lock)  # free: taken without waiting
    assert lock.locked()
    assert not _acquired_at_once(lock)  # held: the caller must wait its turn
    waiter = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)  # the waiter is queued
    lock.release()  # free again, but the queued waiter is first
    assert not lock.locked()
    assert not _acquired_at_once(lock)
    assert await asyncio.wait_for(waiter, 5)  # the closed attempt left the queue as it was
    assert lock.locked()
    lock.release()
    assert _acquired_at_once(lock)


async def test_a_writer_cancelled_in_the_middle_of_a_statement_gives_the_turn_back(
    database: Database,
) -> None:
    """A task cancelled while its statement runs in aiosqlite's thread (a shutdown, a timeout) has its
    connection invalidated by SQLAlchemy, which checks it in as None: the turn must still come back, or
    every later writer of the process waits the turn's timeout before each write."""
    if not database.is_sqlite:
        assert SQLiteWriteTurn.of(database.engine) is None  # PostgreSQL: row locks, no turn to give back
        return
    scope = new_scope()
    turn = SQLiteWriteTurn.of(database.engine)
    assert turn is not None

    async def bulk() -> None:
        async with database.session() as session:
            await session.execute(
                Item.__table__.insert(),  # type: ignore[attr-defined]
                [{"name": f"{scope}-bulk-{i}", "version": 1} for i in range(200_000)],
            )

    task = asyncio.create_task(bulk())
    for _ in range(200):  # until the bulk insert holds the turn (it is then running in the thread)
        await asyncio.sleep(0.005)
        if turn.held:
            break
    assert turn.held
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not turn.held
    lock = next(iter(turn._locks.values()))
    assert not lock.locked()
    # The next writer takes the turn at once, and nothing of the cancelled one was committed.
    async with database.session() as session:
        session.add(Item(name=f"{scope}-after", version=1))
    async with database.sessionmaker() as session:
        names = (
            await session.scalars(select(Item.name).where(Item.name.startswith(f"{scope}-")))  # type: ignore[attr-defined]
        ).all()
    assert names == [f"{scope}-after"]
