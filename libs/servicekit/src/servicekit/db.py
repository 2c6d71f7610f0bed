"""Async database access for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled connection used this recently is handed out without a liveness ping (HikariCP's
# "aliveBypassWindowMs", 500 ms by default there too): on a busy service the ping is half the round trips
# of a read, and a connection that answered half a second ago almost always still does. An idle one is
# pinged and replaced if dead; a request that draws a connection killed within the window fails once,
# and that disconnect invalidates the whole pool, so the next requests connect afresh.
PRE_PING_BYPASS_SECONDS = 0.5
_LAST_CHECKIN = "servicekit_last_checkin"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database: `DateTime(timezone=True)` in the schema, values
    stored as UTC, and always read back aware. SQLite keeps no offset and hands back naive datetimes,
    which would serialise without one (a product's `created_at` had `Z` on create and none on a later
    read); every column holding a moment uses this type, so each API answer is RFC 3339 with an offset.
    A naive value written is taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether the driver has a transaction open; True when it cannot tell (a closed aiosqlite
    connection raises), so the real commit or rollback runs and handles that case as it always did."""
    try:
        return bool(dbapi_connection.driver_connection.in_transaction)
    except Exception:
        return True


def _end_only_open_transactions(dialect: Any) -> None:
    """sqlite3's commit() and rollback() do nothing when no transaction is open (pysqlite opens none for
    a SELECT), but through aiosqlite each still costs a hop to the connection's thread: the commit of a
    read-only session, the rollback that closes a read connection, the pool's reset on return. Skip them
    when sqlite3 says no transaction is open; anything written is in a transaction and ends as before."""
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        if _in_transaction(dbapi_connection):
            commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        if _in_transaction(dbapi_connection):
            rollback(dbapi_connection)

    dialect.do_commit = do_commit
    dialect.do_rollback = do_rollback


def _record_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_LAST_CHECKIN] = time.monotonic()


def _idle_pinger(engine: AsyncEngine, bypass_seconds: float) -> Any:
    dialect = engine.sync_engine.dialect

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_CHECKIN)
        if last is not None and time.monotonic() - last < bypass_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another one.
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc

    return ping_if_idle


def asyncpg_dsn(url: str) -> str:
    """The plain `postgresql://` DSN asyncpg takes, from a SQLAlchemy URL (`postgresql+asyncpg://…`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    echo: bool = False,
    pre_ping_bypass_seconds: float = PRE_PING_BYPASS_SECONDS,
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout (once per connection), its
    folder is created; PostgreSQL connections idle for longer than `pre_ping_bypass_seconds` are pinged
    before use."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        _end_only_open_transactions(engine.sync_engine.dialect)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
    event.listen(engine.sync_engine, "checkin", _record_checkin)
    event.listen(engine.sync_engine, "checkout", _idle_pinger(engine, pre_ping_bypass_seconds))
    return engine


class Database:
    """An engine plus its session factory."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        echo: bool = False,
        pre_ping_bypass_seconds: float = PRE_PING_BYPASS_SECONDS,
    ) -> None:
        self.url = url
        self.engine = create_engine(
            url, pool_size=pool_size, echo=echo, pre_ping_bypass_seconds=pre_ping_bypass_seconds
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # SQLite (pysqlite) opens no transaction for a SELECT anyway, and switching aiosqlite's
        # isolation level would cost a thread hop per checkout.
        self._reader: AsyncEngine = (
            self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only (Core statements, no ORM session): cheaper than `session()`.
        On PostgreSQL it runs in autocommit, which spares the BEGIN and ROLLBACK round trips: each
        statement sees its own snapshot, so reads that must agree with each other belong in one
        statement (or in a session). Never write through it."""
        async with self._reader.connect() as connection:
            yield connection

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
