"""Async database access for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenlet import getcurrent
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import EMPTY_DICT, await_
from sqlmodel import SQLModel

if TYPE_CHECKING:
    from servicekit.lean import Lease

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

log = logging.getLogger(__name__)

SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

SQLITE_BUSY_TIMEOUT_MS = 30_000
# SQLite copies the write-ahead log into the database (a checkpoint, with an fsync) inside the commit that
# takes the log past this many pages: every so many writes, one request paid for it (creating a customer at
# 1M: p99 22 ms with the default 1,000 pages, under 10 with checkpoints elsewhere). A service checkpoints in
# the background instead (`WalCheckpointer`, every second), so the log stays far below this; the threshold
# remains as a backstop for processes that run no checkpointer (a CLI command, a test).
SQLITE_AUTOCHECKPOINT_PAGES = 10_000
WAL_CHECKPOINT_INTERVAL_S = 1.0
# A pooled connection used this recently is handed out without a liveness ping (HikariCP's
# "aliveBypassWindowMs", 500 ms by default there too): on a busy service the ping is half the round trips
# of a read, and a connection that answered half a second ago almost always still does. An idle one is
# pinged and replaced if dead; a request that draws a connection killed within the window fails once,
# and that disconnect invalidates the whole pool, so the next requests connect afresh.
PRE_PING_BYPASS_SECONDS = 0.5
_LAST_CHECKIN = "servicekit_last_checkin"


def utc_now() -> datetime:
    """The current moment, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime; a naive one (as SQLite hands back) is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database: `DateTime(timezone=True)` in the schema, values
    stored as UTC, and always read back aware. SQLite keeps no offset and hands back naive datetimes,
    which would serialise without one (a product's `created_at` had `Z` on create and none on a later
    read); every column holding a moment uses this type, so each API answer is RFC 3339 with an offset.
    A naive value written is taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


_engine_keys: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def engine_key(engine: Engine | AsyncEngine) -> str:
    """The database an engine writes to, as a string to key by (its URL rendered once: hashing a URL
    renders it each time, and the outbox and the relay look this up on every commit)."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    key = _engine_keys.get(sync_engine)
    if key is None:
        key = _engine_keys[sync_engine] = sync_engine.url.render_as_string(hide_password=False)
    return key


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that runs a statement in one trip to aiosqlite's thread.

    SQLAlchemy's aiosqlite cursor makes a trip to the connection's thread to open an aiosqlite cursor,
    one to execute, one to fetch the rows and one to close it: each trip is a thread wake-up and an event
    loop wake-up, which on a busy machine cost far more than the statement itself, and a writer holds
    SQLite's write lock across its trips. Here one function does all four in the thread (the results are
    buffered, as SQLAlchemy's cursor buffers them anyway). Server-side cursors are left as they are."""

    __slots__ = ("_one_hop_arraysize", "_one_hop_description", "_one_hop_lastrowid", "_one_hop_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._one_hop_description: Any = None
        self._one_hop_rowcount = -1
        self._one_hop_lastrowid: Any = None
        self._one_hop_arraysize = 1

    @property
    def description(self) -> Any:
        return self._one_hop_description

    @property
    def rowcount(self) -> int:
        return self._one_hop_rowcount

    @property
    def lastrowid(self) -> Any:
        return self._one_hop_lastrowid

    @property
    def arraysize(self) -> int:
        return self._one_hop_arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._one_hop_arraysize = value

    def _run(self, many: bool, operation: Any, parameters: Any) -> None:
        connection = self._connection
        inline = type(self._adapt_connection) is _InlineConnection
        outcome = None
        if inline and not many:
            try:
                outcome = _run_inline(connection._conn, operation, parameters)
            except Exception as error:
                self._adapt_connection._handle_exception(error)
        if outcome is None:

            def in_thread() -> tuple[Any, list[Any], int, Any]:
                return _execute_waiting(connection._conn, many, operation, parameters, busy_wait=inline)

            try:
                outcome = await_(connection._execute(in_thread))
            except Exception as error:
                self._adapt_connection._handle_exception(error)
        description, rows, rowcount, lastrowid = outcome
        self._one_hop_description = description
        self._rows = collections.deque(rows)
        self._one_hop_rowcount = rowcount
        self._one_hop_lastrowid = lastrowid

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._run(False, operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(True, operation, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        return  # nothing open in the thread

    def close(self) -> None:
        self._rows.clear()


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneHopCursor


# --- SQLite statements on the event loop's thread ---------------------------------------------------
#
# A trip to aiosqlite's thread wakes that thread and then the event loop: ~15 µs of CPU on a quiet
# machine, and on a busy one a wait for the thread to be scheduled, while a writer holds SQLite's write
# lock (and the engine's write turn) across its trips. A statement of a service is mostly a few tens of
# microseconds of SQLite's own work, so `_InlineConnection` runs it in the calling thread instead, with
# three guards that keep the event loop from being held for long:
#   - a SELECT gets a progress handler that interrupts it after SQLITE_INLINE_BUDGET_S; it then runs again
#     in aiosqlite's thread (an interrupted SELECT changes nothing and leaves the transaction as it was);
#   - any statement that took longer than the budget (a SELECT interrupted, or an INSERT/UPDATE/DELETE,
#     which is never interrupted: SQLite would roll back the whole transaction) is remembered by its text
#     and from then on runs in the thread;
#   - the connection's busy timeout is 0: a statement or commit that meets another connection's write lock
#     fails at once with SQLITE_BUSY, changes nothing, and runs again in the thread with the usual busy
#     timeout (waiting there leaves the loop free for the connection that holds the lock).
# executemany (bulk writes) always goes to the thread, as a batch that fails half-way cannot be rerun.
SQLITE_INLINE_BUDGET_S = 0.002
_INLINE_PROGRESS_STEPS = 1_000  # VM instructions between looks at the clock
_SLOW_STATEMENTS_MAX = 10_000
_slow_statements: set[str] = set()
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _sqlite_code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _remember_slow(operation: str) -> None:
    if len(_slow_statements) < _SLOW_STATEMENTS_MAX:
        _slow_statements.add(operation)


async def _nothing() -> None:
    return None


def _count_as_awaited() -> None:
    """SQLAlchemy's AsyncConnection.execute insists that its driver awaited something (AwaitRequired
    otherwise): hand its greenlet one finished coroutine, once per greenlet (no trip through the loop)."""
    current = getcurrent()
    if getattr(current, "__sqlalchemy_greenlet_provider__", False) and not getattr(
        current, "_servicekit_awaited", False
    ):
        current._servicekit_awaited = True
        await_(_nothing())


def _run_inline(
    conn: sqlite3.Connection, operation: str, parameters: Any
) -> tuple[Any, list[Any], int, Any] | None:
    """Run one statement in this thread; None when it must run in aiosqlite's thread instead (known to
    be slow, interrupted for taking too long, or waiting for a lock)."""
    if operation in _slow_statements:
        return None
    _count_as_awaited()
    guarded = operation.lstrip()[:6].upper() == "SELECT"
    started = time.perf_counter()
    if guarded:
        deadline = started + SQLITE_INLINE_BUDGET_S
        perf_counter = time.perf_counter
        conn.set_progress_handler(lambda: perf_counter() > deadline, _INLINE_PROGRESS_STEPS)
    try:
        outcome = _statement(conn, False, operation, parameters)
    except sqlite3.OperationalError as error:
        code = _sqlite_code(error)
        if code in _BUSY_CODES:
            return None
        if code == sqlite3.SQLITE_INTERRUPT and guarded:
            _remember_slow(operation)
            return None
        raise
    finally:
        if guarded:
            conn.set_progress_handler(None, 0)
    if time.perf_counter() - started > SQLITE_INLINE_BUDGET_S:
        _remember_slow(operation)
    return outcome


def _statement(
    conn: sqlite3.Connection, many: bool, operation: Any, parameters: Any
) -> tuple[Any, list[Any], int, Any]:
    """One statement (or one executemany) with its rows: description, rows, rowcount, lastrowid."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


@contextlib.contextmanager
def _waiting_for_locks(conn: sqlite3.Connection) -> Iterator[None]:
    """The usual busy timeout for what runs inside, on an inline connection (whose timeout is 0)."""
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    try:
        yield
    finally:
        conn.execute("PRAGMA busy_timeout=0")


def _execute_waiting(
    conn: sqlite3.Connection, many: bool, operation: Any, parameters: Any, *, busy_wait: bool
) -> tuple[Any, list[Any], int, Any]:
    """One statement with its rows, in aiosqlite's thread; with `busy_wait` (an inline connection)
    under the usual busy timeout."""
    if not busy_wait:
        return _statement(conn, many, operation, parameters)
    with _waiting_for_locks(conn):
        return _statement(conn, many, operation, parameters)


def _end_inline(conn: sqlite3.Connection, commit: bool) -> bool:
    """Commit or roll back in this thread; False (nothing done) when another connection's lock is met,
    which an inline connection (busy timeout 0) then waits for in its thread (`_end_waiting`)."""
    try:
        conn.commit() if commit else conn.rollback()
        return True
    except sqlite3.OperationalError as error:
        if _sqlite_code(error) not in _BUSY_CODES:
            raise
        return False


def _end_waiting(conn: sqlite3.Connection, commit: bool) -> None:
    with _waiting_for_locks(conn):
        conn.commit() if commit else conn.rollback()


class _InlineConnection(_OneHopConnection):
    """A `_OneHopConnection` whose statements, commits and rollbacks run in the event loop's thread
    (see above); bulk statements and anything slow or waiting for a lock still go to aiosqlite's."""

    __slots__ = ()

    def _end(self, commit: bool) -> None:
        connection = self._connection
        if not connection._connection:
            return
        conn = connection._conn
        try:
            if not _end_inline(conn, commit):
                await_(connection._execute(partial(_end_waiting, conn, commit)))
        except Exception as error:
            self._handle_exception(error)

    def commit(self) -> None:
        self._end(True)

    def rollback(self) -> None:
        self._end(False)


def _sqlite_pragmas(
    dbapi_connection: Any, _record: Any, *, inline: bool = False, cache_kib: int | None = None
) -> None:
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        # Same layout (no slots added): statements in one trip, or (inline) in the event loop's thread.
        dbapi_connection.__class__ = _InlineConnection if inline else _OneHopConnection
    else:
        inline = False  # another driver's connection (a synchronous engine): its usual busy timeout
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # An inline connection never waits for a lock in the event loop's thread (see _run_inline).
    cursor.execute(f"PRAGMA busy_timeout={0 if inline else SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
    if cache_kib is not None:  # negative: a size in KiB (SQLite allocates the pages as they are read)
        cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
    cursor.close()


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether the driver has a transaction open; True when it cannot tell (a closed aiosqlite
    connection raises), so the real commit or rollback runs and handles that case as it always did."""
    try:
        return bool(dbapi_connection.driver_connection.in_transaction)
    except Exception:
        return True


def _end_only_open_transactions(dialect: Any, turn: SQLiteWriteTurn) -> None:
    """sqlite3's commit() and rollback() do nothing when no transaction is open (pysqlite opens none for
    a SELECT), but through aiosqlite each still costs a hop to the connection's thread: the commit of a
    read-only session, the rollback that closes a read connection, the pool's reset on return. Skip them
    when sqlite3 says no transaction is open; anything written is in a transaction and ends as before."""
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            if _in_transaction(dbapi_connection):
                commit(dbapi_connection)
        finally:
            turn.release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            if _in_transaction(dbapi_connection):
                rollback(dbapi_connection)
        finally:
            turn.release(dbapi_connection)

    dialect.do_commit = do_commit
    dialect.do_rollback = do_rollback


SQLITE_WRITE_TURN_TIMEOUT_S = 2.0
_WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _acquired_at_once(lock: asyncio.Lock) -> bool:
    """Take `lock` if that needs no waiting: True when taken. Most writes find their turn free, and
    waiting through `asyncio.wait_for` costs a task, a timer and two greenlet switches per write.
    `acquire()` is run to its first suspension: a free lock is taken without one; when it would wait
    (the lock held, or others queued first), the attempt is closed, which leaves the queue as it was."""
    if lock.locked():
        return False
    attempt = lock.acquire()
    try:
        attempt.send(None)
    except StopIteration:
        return True
    attempt.close()
    return False


class SQLiteWriteTurn:
    """Lets one connection of an engine at a time write, queueing the others in the event loop.

    SQLite has one writer lock per database file; a connection that meets it held waits in SQLite's busy
    handler, which sleeps 1, 2, 5, 10 ... 100 ms between tries, so concurrent writers in one process
    spend much of their time asleep after the holder has long committed. Here a connection takes its
    turn (an asyncio lock, first come first served) just before its first INSERT/UPDATE/DELETE, which is
    when SQLite takes its lock, and gives it back right after its commit or rollback (or when it returns
    to the pool), so the next writer starts at once. Correctness never depends on it: a connection that
    waits longer than `timeout` (a task writing through two sessions at once, say) goes on without its
    turn, and SQLite's own lock and busy timeout decide, as they would without this."""

    def __init__(self, timeout: float = SQLITE_WRITE_TURN_TIMEOUT_S) -> None:
        self.timeout = timeout
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._holder: Any = None

    @staticmethod
    def of(engine: AsyncEngine) -> SQLiteWriteTurn | None:
        """The turn installed on `engine`, if any."""
        turn: SQLiteWriteTurn | None = getattr(engine.sync_engine, "_servicekit_write_turn", None)
        return turn

    @property
    def held(self) -> bool:
        return self._holder is not None

    def install(self, engine: AsyncEngine) -> None:
        setattr(engine.sync_engine, "_servicekit_write_turn", self)  # noqa: B010 (Engine has no such attribute)
        event.listen(engine.sync_engine, "before_cursor_execute", self._before_execute)
        event.listen(
            engine.sync_engine, "checkin", lambda dbapi_connection, _record: self.release(dbapi_connection)
        )
        # A connection interrupted in the middle of a statement (its task cancelled while the statement ran
        # in aiosqlite's thread) is invalidated and closed, and then checked in as None: give its turn
        # back when that happens, or the turn would stay held and every later writer would wait `timeout`.
        event.listen(
            engine.sync_engine,
            "invalidate",
            lambda dbapi_connection, _record, _exception: self.release(dbapi_connection),
        )
        for closing in ("close", "detach"):
            event.listen(
                engine.sync_engine, closing, lambda dbapi_connection, _record: self.release(dbapi_connection)
            )

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = asyncio.Lock()
            self._locks = {loop: lock}  # engines outlive test event loops: keep only the current one
            self._holder = None
        return lock

    def _before_execute(
        self, conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        if self._holder is dbapi_connection or not statement.lstrip()[:7].upper().startswith(_WRITE_PREFIXES):
            return
        if _in_transaction(dbapi_connection):
            return  # it already writes (its turn timed out earlier): SQLite's lock rules it
        try:
            lock = self._lock()
            if not _acquired_at_once(lock):
                await_(asyncio.wait_for(lock.acquire(), self.timeout))
        except Exception:  # the wait timed out, or no event loop / greenlet to wait in (sync use)
            return
        self._holder = dbapi_connection

    async def take(self, dbapi_connection: Any) -> None:
        """Take the turn for `dbapi_connection` from an async caller (a lean transaction, at its first
        statement; a session's connection takes it in `_before_execute`). As there, a wait longer than
        `timeout` goes on without it and SQLite's own lock decides."""
        lock = self._lock()
        if not _acquired_at_once(lock):
            try:
                await asyncio.wait_for(lock.acquire(), self.timeout)
            except TimeoutError:
                return
        self._holder = dbapi_connection

    def release(self, dbapi_connection: Any) -> None:
        if dbapi_connection is not None and self._holder is dbapi_connection:
            self._holder = None
            lock = next(iter(self._locks.values()), None)
            if lock is not None and lock.locked():
                lock.release()


class WalCheckpointer:
    """Checkpoints a SQLite database's write-ahead log every `interval` seconds, off the request path.

    `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own, in a thread of its own: it copies what it
    can into the database without waiting for any lock (a reader or a writer busy at that moment only
    leaves some pages for the next round), so no commit has to do it (see SQLITE_AUTOCHECKPOINT_PAGES)."""

    def __init__(self, path: str, interval: float = WAL_CHECKPOINT_INTERVAL_S) -> None:
        self.path = path
        self.interval = interval
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def for_url(cls, url: str, interval: float = WAL_CHECKPOINT_INTERVAL_S) -> WalCheckpointer | None:
        """A checkpointer for a SQLite file database; None for PostgreSQL or an in-memory database."""
        if not is_sqlite(url):
            return None
        database = make_url(url).database
        return cls(database, interval) if database and database != ":memory:" else None

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, pages in the log, pages checkpointed), in the calling thread."""
        if self._connection is None:
            self._connection = sqlite3.connect(self.path, timeout=0, check_same_thread=False)
        busy, log_pages, done = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(log_pages), int(done)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def run(self, stop: asyncio.Event) -> None:
        """Checkpoint every `interval` until `stop` is set."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")
        loop = asyncio.get_running_loop()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
                if stop.is_set():
                    return
                try:
                    await loop.run_in_executor(executor, self.checkpoint)
                except Exception as exc:  # the database file is gone or locked oddly: try again later
                    log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            await loop.run_in_executor(executor, self.close)
            executor.shutdown(wait=False)


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
    sqlite_write_turn: bool = True,
    sqlite_inline: bool = True,
    sqlite_cache_kib: int | None = None,
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout (once per connection), its
    folder is created, its writers take turns (`SQLiteWriteTurn`, unless `sqlite_write_turn=False`) and
    its statements run in the event loop's thread (`_InlineConnection`, unless `sqlite_inline=False`);
    `sqlite_cache_kib` sets each SQLite connection's page cache (`PRAGMA cache_size`; None keeps SQLite's
    default of 2,000 KiB). PostgreSQL connections idle for longer than `pre_ping_bypass_seconds` are
    pinged before use."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=echo,
            # check_same_thread=False: aiosqlite opens the connection in its thread, an inline connection
            # also uses it from the event loop's (never both at once: each call is awaited before the next).
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": not sqlite_inline},
        )

        def pragmas(dbapi_connection: Any, record: Any) -> None:
            _sqlite_pragmas(dbapi_connection, record, inline=sqlite_inline, cache_kib=sqlite_cache_kib)

        event.listen(engine.sync_engine, "connect", pragmas)
        turn = SQLiteWriteTurn()
        if sqlite_write_turn:
            turn.install(engine)
        _end_only_open_transactions(engine.sync_engine.dialect, turn)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
    event.listen(engine.sync_engine, "checkin", _record_checkin)
    event.listen(engine.sync_engine, "checkout", _idle_pinger(engine, pre_ping_bypass_seconds))
    return engine


def _commit_and_close(session: Session) -> None:
    session.commit()
    session.close()


class Database:
    """An engine plus its session factory."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        echo: bool = False,
        pre_ping_bypass_seconds: float = PRE_PING_BYPASS_SECONDS,
        sqlite_write_turn: bool = True,
        sqlite_inline: bool = True,
        sqlite_cache_kib: int | None = None,
    ) -> None:
        self.url = url
        self.engine = create_engine(
            url,
            pool_size=pool_size,
            echo=echo,
            pre_ping_bypass_seconds=pre_ping_bypass_seconds,
            sqlite_write_turn=sqlite_write_turn,
            sqlite_inline=sqlite_inline,
            sqlite_cache_kib=sqlite_cache_kib,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # SQLite (pysqlite) opens no transaction for a SELECT anyway, and switching aiosqlite's
        # isolation level would cost a thread hop per checkout.
        self._reader: AsyncEngine = (
            self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @functools.cached_property
    def is_sqlite(self) -> bool:
        # Read on the relay's and consumer's path for every batch: parse the URL once.
        return is_sqlite(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block succeeds and rolls back when it raises.

        On success the commit and the close run in one call into SQLAlchemy's greenlet (every writer
        takes this path: a separate close is one more greenlet and a task of its own). The close after
        a commit awaits nothing (the pool skips its reset when the transaction has ended), so only the
        commit can be interrupted; anything raised there, a cancellation included, takes the failure
        path: roll back, then close shielded from cancellation as `async with AsyncSession` does."""
        session = self.sessionmaker()
        try:
            yield session
            await session.run_sync(_commit_and_close)
        except BaseException:
            try:
                await session.rollback()
            finally:
                await session.__aexit__(None, None, None)
            raise

    def transaction(self) -> Lease:
        """A lean transaction (`servicekit.lean`): `async with database.transaction() as tx:`, Core
        statements on one pooled driver connection, no ORM session; for hot paths that write a few rows by
        statement. Commits when the block succeeds, rolls back when it raises."""
        from servicekit.lean import Lease

        return Lease(self)

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


def dialect_insert(session: AsyncSession) -> Any:
    """The INSERT construct of the session's database (PostgreSQL's or SQLite's), which has
    `on_conflict_do_nothing` / `on_conflict_do_update`."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def insert_if_absent(session: AsyncSession, table: Any, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING (SQLite and PostgreSQL): True when this call inserted the row.

    The row is the claim: of concurrent writers of the same unique key exactly one gets True, without
    an IntegrityError rolling back the transaction."""
    statement = dialect_insert(session)(table).values(**values).on_conflict_do_nothing()
    result: Any = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def upsert(
    session: AsyncSession, table: Any, *, values: dict[str, Any], key: list[str], set_: dict[str, Any]
) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE SET …: one statement, so concurrent writers of a new row
    cannot both insert it (no read-then-write, no unique violation on `key`)."""
    statement = dialect_insert(session)(table).values(**values)
    await session.execute(statement.on_conflict_do_update(index_elements=key, set_=set_))
