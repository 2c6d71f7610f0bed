"""SQLite's write-ahead log is copied into the database in the background, not inside a request's commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from servicekit.db import SQLITE_AUTOCHECKPOINT_PAGES, Database, WalCheckpointer


async def _fill(database: Database, rows: int) -> None:
    async with database.session() as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, body BLOB)"))
        for start in range(0, rows, 100):
            await session.execute(
                text("INSERT INTO blobs (body) VALUES (randomblob(1000))"), [{}] * min(100, rows - start)
            )


async def test_service_connections_leave_checkpoints_to_the_background(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    try:
        async with database.read() as connection:
            pages = (await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
        assert pages == SQLITE_AUTOCHECKPOINT_PAGES
        # About 1,300 pages of log: past SQLite's default threshold (a checkpoint inside a commit).
        await _fill(database, 4000)
        path = tmp_path / "app.db"
        assert path.stat().st_size < 1_000_000  # the rows are still only in the log
        assert (tmp_path / "app.db-wal").stat().st_size > 4_000_000

        checkpointer = WalCheckpointer.for_url(database.url, interval=0.05)
        assert checkpointer is not None
        stop = asyncio.Event()
        task = asyncio.create_task(checkpointer.run(stop))
        try:
            for _ in range(100):
                if path.stat().st_size > 4_000_000:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
        assert path.stat().st_size > 4_000_000  # copied into the database by the checkpointer
        async with database.read() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM blobs"))).scalar_one() == 4000
    finally:
        await database.dispose()


def test_only_sqlite_files_get_a_checkpointer() -> None:
    assert WalCheckpointer.for_url("postgresql+asyncpg://u@h/db") is None
    assert WalCheckpointer.for_url("sqlite+aiosqlite:///:memory:") is None
    checkpointer = WalCheckpointer.for_url("sqlite+aiosqlite:////tmp/x/app.db")
    assert checkpointer is not None
    assert checkpointer.path == "/tmp/x/app.db"
