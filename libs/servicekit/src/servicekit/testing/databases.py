"""Fresh databases for tests and benchmarks: a SQLite temp file, or a uniquely named PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from servicekit.db import asyncpg_dsn

TEST_DATABASE_URL_ENV = "TEST_DATABASE_URL"


async def _execute(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _scratch_name(label: str) -> str:
    return f"t_{label[:30]}_{uuid.uuid4().hex[:10]}".lower().replace("-", "_")


@asynccontextmanager
async def scratch_postgres_database(base_url: str, label: str) -> AsyncIterator[str]:
    """Create a uniquely named database on `base_url`'s server, yield its URL, drop it afterwards."""
    name = _scratch_name(label)
    admin = asyncpg_dsn(base_url)
    await _execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(tmp_dir: Path, label: str = "test") -> Iterator[str]:
    """Yield the URL of an empty database and remove it afterwards.

    PostgreSQL when TEST_DATABASE_URL is set (a database named after `label` is created on that
    server and dropped after), otherwise a SQLite file under `tmp_dir`. Call outside an event loop.
    """
    base = os.environ.get(TEST_DATABASE_URL_ENV)
    if not base:
        yield f"sqlite+aiosqlite:///{tmp_dir / f'{label}.db'}"
        return
    name = _scratch_name(label)
    admin = asyncpg_dsn(base)
    asyncio.run(_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def using_postgres() -> bool:
    return bool(os.environ.get(TEST_DATABASE_URL_ENV))
