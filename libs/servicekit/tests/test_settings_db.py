"""Settings come from prefixed environment variables and refuse dev secrets in production; the database
layer configures SQLite safely and commits or rolls back a session as a unit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from servicekit.db import SQLITE_BUSY_TIMEOUT_MS, Database, SQLiteWriteTurn
from servicekit.settings import ServiceSettings
from servicekit.testing import using_postgres

from .support import Item


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    service_name: str = "demo-service"
    signing_secret: str = "dev-only-signing-secret"


class SecretDemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    master_key: SecretStr = SecretStr("dev-only-master-key")


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}")
    yield database
    await database.dispose()


async def pragma(database: Database, name: str) -> object:
    async with database.engine.connect() as conn:
        return (await conn.execute(text(f"PRAGMA {name}"))).scalar()


async def count_named(database: Database, name: str) -> int:
    async with database.sessionmaker() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Item).where(col(Item.name) == name)) or 0
        )


def test_production_refuses_a_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="signing_secret"):
        DemoSettings()


def test_production_refuses_a_development_secret_held_as_secretstr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="master_key"):
        SecretDemoSettings()


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("DEMO_SIGNING_SECRET", "c2VjcmV0LWZyb20tdGhlLXZhdWx0")
    assert DemoSettings().environment == "production"


def test_development_accepts_the_development_secret() -> None:
    assert DemoSettings(environment="development").signing_secret == "dev-only-signing-secret"


def test_kafka_servers_are_read_without_prefix_and_database_url_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("DEMO_KAFKA_BOOTSTRAP_SERVERS", "prefixed-is-ignored:9092")
    monkeypatch.setenv("DEMO_DATABASE_URL", "postgresql+asyncpg://demo@db/demo")
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///unprefixed-is-ignored.db")

    settings = DemoSettings()

    assert settings.kafka_bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert settings.database_url == "postgresql+asyncpg://demo@db/demo"


async def test_sqlite_runs_in_wal_mode(sqlite_database: Database) -> None:
    assert await pragma(sqlite_database, "journal_mode") == "wal"


async def test_sqlite_enforces_foreign_keys(sqlite_database: Database) -> None:
    assert await pragma(sqlite_database, "foreign_keys") == 1


async def test_sqlite_waits_for_a_busy_database_instead_of_failing(tmp_path: Path) -> None:
    # A connection whose statements run in aiosqlite's thread waits there; an inline one (the default)
    # has no busy timeout and waits in the thread instead (test_sqlite_inline.py).
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'threaded.db'}", sqlite_inline=False)
    try:
        assert await pragma(database, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
    finally:
        await database.dispose()


async def test_sqlite_page_cache_is_sqlite_s_default_unless_set(tmp_path: Path) -> None:
    default = Database(f"sqlite+aiosqlite:///{tmp_path / 'default.db'}")
    sized = Database(f"sqlite+aiosqlite:///{tmp_path / 'sized.db'}", sqlite_cache_kib=32768)
    threaded = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'threaded.db'}", sqlite_cache_kib=4096, sqlite_inline=False
    )
    try:
        assert await pragma(default, "cache_size") == -2000
        assert await pragma(sized, "cache_size") == -32768
        assert await pragma(threaded, "cache_size") == -4096
        assert await pragma(threaded, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS  # still a threaded one
        assert await pragma(sized, "journal_mode") == "wal"
    finally:
        for database in (default, sized, threaded):
            await database.dispose()


async def test_sqlite_database_folder_is_created(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'nested' / 'service.db'}")
    try:
        await database.ping()
    finally:
        await database.dispose()
    assert (tmp_path / "var" / "nested" / "service.db").exists()


async def test_session_commits_when_the_block_succeeds(database: Database) -> None:
    name = f"committed-{uuid.uuid4().hex[:8]}"
    async with database.session() as session:
        session.add(Item(name=name, version=1))
    assert await count_named(database, name) == 1


async def test_session_rolls_back_when_the_block_raises(database: Database) -> None:
    name = f"rolled-back-{uuid.uuid4().hex[:8]}"

    async def write_then_fail() -> None:
        async with database.session() as session:
            session.add(Item(name=name, version=1))
            await session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail()
    assert await count_named(database, name) == 0


def checked_out(database: Database) -> int:
    return int(database.engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_a_commit_that_fails_rolls_back_and_gives_the_connection_back(database: Database) -> None:
    # The session commits and closes in one call: when the commit raises (here its flush meets a taken
    # primary key), the session must still roll back, return its connection and, on SQLite, its write turn.
    name = f"taken-{uuid.uuid4().hex[:8]}"
    async with database.session() as session:
        item = Item(name=name, version=1)
        session.add(item)
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            session.add(Item(id=item.id, name=f"{name}-again", version=2))
    assert checked_out(database) == 0
    turn = SQLiteWriteTurn.of(database.engine)
    assert turn is None or not turn.held
    async with database.session() as session:  # the next writer is not held up by the failed one
        session.add(Item(name=f"{name}-next", version=3))
    assert await count_named(database, f"{name}-again") == 0
    assert await count_named(database, f"{name}-next") == 1


async def test_a_session_cancelled_inside_its_block_rolls_back_and_gives_the_connection_back(
    database: Database,
) -> None:
    name = f"cancelled-{uuid.uuid4().hex[:8]}"
    flushed = asyncio.Event()

    async def write_then_wait() -> None:
        async with database.session() as session:
            session.add(Item(name=name, version=1))
            await session.flush()
            flushed.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(write_then_wait())
    await asyncio.wait_for(flushed.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(database) == 0
    assert await count_named(database, name) == 0
    async with database.session() as session:  # the write turn was given back
        session.add(Item(name=name, version=2))
    assert await count_named(database, name) == 1


async def test_read_connection_sees_committed_rows(database: Database) -> None:
    name = f"read-{uuid.uuid4().hex[:8]}"
    async with database.session() as session:
        session.add(Item(name=name, version=1))
    async with database.read() as connection:
        found = await connection.execute(select(col(Item.version)).where(col(Item.name) == name))
        assert found.scalar() == 1


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(sqlite_database: Database) -> None:
    # A write issued on the driver connection directly: SQLAlchemy sees no transaction of its own, so only
    # the pool's reset on return can undo it.
    async with sqlite_database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (body TEXT)"))
    async with sqlite_database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        await raw.driver_connection.execute("INSERT INTO notes VALUES ('uncommitted')")
        assert raw.driver_connection.in_transaction
    async with sqlite_database.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM notes"))).scalar() == 0


@pytest.mark.postgres
async def test_a_pooled_connection_killed_while_idle_is_replaced_before_use(database_url: str) -> None:
    assert using_postgres(), "run with TEST_DATABASE_URL pointing at PostgreSQL (make test-pg)"
    database = Database(database_url, pre_ping_bypass_seconds=0)
    other = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            killed = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
        async with other.engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed})

        async with database.engine.connect() as connection:
            serving = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()

        assert serving != killed
    finally:
        await other.dispose()
        await database.dispose()
