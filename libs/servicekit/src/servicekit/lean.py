"""A lean transaction: Core statements on one pooled driver connection, without an ORM session.

`Database.session()` is how services write: an `AsyncSession`, its unit of work, its events. Each of
its transactions also costs SQLAlchemy's session, connection and execution-context machinery, which on a
write of one or two rows is most of the CPU: measured with 8 writers of one outbox row each, 0.16 ms a
transaction on SQLite and 0.21-0.24 on PostgreSQL through a session, against 0.06-0.07 on SQLite through
`Database.transaction()` (bench/README.md, "A lean writer"; on PostgreSQL a one-row transaction costs
0.08-0.10 this way against 0.25-0.28 in a session). A hot path that writes a few rows
by statement (a compare-and-set and its event, a counter, an outbox row) can take this instead:

```python
async with database.transaction() as tx:
    changed = await tx.execute(RESERVE, {"sku": sku, "quantity": quantity})
    if changed != 1:
        raise Conflict("not enough stock")
    await outbox.add(tx, event)
```

- Statements are SQLAlchemy Core constructs (or `text()`), compiled once per database dialect (and per
  set of given columns for an INSERT) and handed to the driver with their bind processors applied, so
  values are stored exactly as a session stores them. Python-side column defaults are not computed: an
  INSERT names every column it fills.
- The transaction commits when the block succeeds and rolls back when it raises; errors are SQLAlchemy's
  (`IntegrityError` for a broken constraint, and so on) wrapping the driver's.
- On SQLite the transaction takes the engine's write turn at its first statement (staged writes run at
  commit) and holds it to its end, and runs its statements in the event loop's thread with the same
  guards as a session's (`servicekit.db`): a slow SELECT, a bulk statement or a wait for another
  process's lock goes to the connection's thread. On PostgreSQL it is one asyncpg transaction on a
  connection of the engine's pool.
- Commit hooks (`on_commit`) let the outbox relay wake when a transaction staged events, as a session's
  `after_commit` does.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Insert
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import greenlet_spawn

from servicekit.db import (
    SQLiteWriteTurn,
    _end_inline,
    _end_waiting,
    _execute_waiting,
    _InlineConnection,
    _run_inline,
)

if TYPE_CHECKING:
    from servicekit.db import Database

_COMPILED_MAX = 2_000  # statements are module constants; more than this means ad-hoc ones: start over

_commit_hooks: list[Callable[[Transaction], None]] = []


def on_commit(hook: Callable[[Transaction], None]) -> Callable[[Transaction], None]:
    """Call `hook(transaction)` after every lean transaction commits (the relay registers its wake-up)."""
    _commit_hooks.append(hook)
    return hook


_NO_FALLBACK = object()


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind names in the driver's positional order
    fallbacks: tuple[Any, ...]  # each name's value when the caller gives none (_NO_FALLBACK: required)
    processors: tuple[Callable[[Any], Any] | None, ...]
    result_processors: tuple[Callable[[Any], Any] | None, ...]


_compiled: dict[tuple[str, int, frozenset[str] | None], tuple[ClauseElement, _Compiled]] = {}


def _fallback(compiled: Any, name: str, scalar_defaults: Mapping[str, Any]) -> Any:
    if name in scalar_defaults:
        return scalar_defaults[name]
    bind = compiled.binds[name]
    if bind.callable is not None:
        raise ValueError(f"a lean transaction takes no callable bind parameter ({name})")
    if getattr(bind, "expanding", False):
        raise ValueError(f"a lean transaction takes no expanding IN parameter ({name})")
    return _NO_FALLBACK if bind.required else bind.value


def _compile(statement: ClauseElement, dialect: Dialect, keys: frozenset[str] | None) -> _Compiled:
    cache_key = (dialect.name, id(statement), keys)
    cached = _compiled.get(cache_key)
    if cached is not None and cached[0] is statement:
        return cached[1]
    column_keys = sorted(keys) if keys is not None else None
    compiled: Any = statement.compile(dialect=dialect, column_keys=column_keys)
    # Columns the caller left out whose default is a constant (attempts=0) take it, as a session would;
    # a default computed in Python (a clock, a uuid) is not run here: the caller names that column.
    scalar_defaults: dict[str, Any] = {}
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if default is None or not default.is_scalar:
            raise ValueError(f"a lean transaction computes no Python-side defaults: give {column.key}")
        scalar_defaults[column.key] = default.arg
    names = tuple(compiled.positiontup or ())
    bind_processors = compiled._bind_processors
    entry = _Compiled(
        sql=compiled.string,
        names=names,
        fallbacks=tuple(_fallback(compiled, name, scalar_defaults) for name in names),
        processors=tuple(bind_processors.get(name) for name in names),
        result_processors=tuple(
            column.type._cached_result_processor(dialect, None) for column in compiled._result_columns
        ),
    )
    if len(_compiled) >= _COMPILED_MAX:
        _compiled.clear()
    _compiled[cache_key] = (statement, entry)
    return entry


def _positional(entry: _Compiled, parameters: Mapping[str, Any] | None) -> tuple[Any, ...]:
    given = parameters or {}
    values = []
    for name, fallback, processor in zip(entry.names, entry.fallbacks, entry.processors, strict=True):
        value = given.get(name, fallback)
        if value is _NO_FALLBACK:
            raise exc.ArgumentError(f"no value for parameter {name!r}")
        values.append(value if processor is None else processor(value))
    return tuple(values)


def _keys_of(statement: ClauseElement, parameters: Mapping[str, Any] | None) -> frozenset[str] | None:
    # An INSERT renders the columns it is given (as a session's execute does); anything else renders its
    # own bind parameters whatever the caller passes.
    return frozenset(parameters) if isinstance(statement, Insert) and parameters is not None else None


# PostgreSQL's SQLSTATE classes as SQLAlchemy's errors (asyncpg's own classes carry no DB-API names).
_ERRORS_BY_SQLSTATE_CLASS: dict[str, type[exc.DBAPIError]] = {
    "23": exc.IntegrityError,
    "22": exc.DataError,
    "42": exc.ProgrammingError,
    "40": exc.OperationalError,
    "53": exc.OperationalError,
    "57": exc.OperationalError,
    "08": exc.OperationalError,
}


def _wrap(error: Exception, sql: str, parameters: Any) -> Exception:
    """The driver's error as SQLAlchemy's (what a session would raise), the driver's kept as `orig`."""
    if isinstance(error, sqlite3.Error):
        return exc.DBAPIError.instance(sql, parameters, error, sqlite3.Error)
    state = str(getattr(error, "sqlstate", "") or "")
    return _ERRORS_BY_SQLSTATE_CLASS.get(state[:2], exc.DBAPIError)(sql, parameters, error)


class Transaction(abc.ABC):
    """One lean transaction (see the module's text); made by `Database.transaction()`. The database's
    subclass runs the statements and ends the transaction."""

    def __init__(self, database: Database, dialect: Dialect) -> None:
        self.database = database
        self.dialect = dialect
        self.info: dict[str, Any] = {}
        self.interrupted = False  # cancelled while a statement ran where it cannot be stopped (SQLite)
        self._staged: list[tuple[_Compiled, Any, bool]] = []  # (statement, values, many)

    @property
    def dialect_name(self) -> str:
        return str(self.dialect.name)

    async def execute(self, statement: ClauseElement, parameters: Mapping[str, Any] | None = None) -> int:
        """Run one statement; the number of rows it changed (-1 when the driver cannot tell)."""
        entry = _compile(statement, self.dialect, _keys_of(statement, parameters))
        values = _positional(entry, parameters)
        await self._flush()
        outcome = await self._run(entry, values, many=False, rows=False)
        return int(outcome[1])

    async def fetch(
        self, statement: ClauseElement, parameters: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (a SELECT, or a statement with RETURNING)."""
        entry = _compile(statement, self.dialect, _keys_of(statement, parameters))
        values = _positional(entry, parameters)
        await self._flush()
        rows: list[Sequence[Any]] = (await self._run(entry, values, many=False, rows=True))[0]
        processors = entry.result_processors
        if not any(processors):
            return [tuple(row) for row in rows]
        return [
            tuple(value if p is None else p(value) for value, p in zip(row, processors, strict=False))
            for row in rows
        ]

    async def executemany(self, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement once per row (all rows with the same keys)."""
        if rows:
            self.stage_many(statement, rows)
            await self._flush()

    def stage(self, statement: ClauseElement, parameters: Mapping[str, Any] | None = None) -> None:
        """A write whose outcome the caller does not read (an outbox row, an audit row): it runs before
        the transaction's next statement, or at commit. Its values are checked now. A transaction whose
        only work is one staged statement runs it alone on PostgreSQL, without BEGIN and COMMIT (one
        statement is atomic by itself): one round trip instead of three."""
        entry = _compile(statement, self.dialect, _keys_of(statement, parameters))
        self._staged.append((entry, _positional(entry, parameters), False))

    def stage_many(self, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        """`stage` for one statement run once per row (all rows with the same keys)."""
        if rows:
            entry = _compile(statement, self.dialect, _keys_of(statement, rows[0]))
            self._staged.append((entry, [_positional(entry, row) for row in rows], True))

    async def _flush(self) -> None:
        while self._staged:
            entry, values, many = self._staged.pop(0)
            await self._run(entry, values, many=many, rows=False)

    @abc.abstractmethod
    async def _run(self, entry: _Compiled, values: Any, *, many: bool, rows: bool) -> Any:
        """One statement (or one statement per row, `many`): (rows, rowcount)."""

    @abc.abstractmethod
    async def _commit(self) -> None:
        """Run what is staged and commit."""

    @abc.abstractmethod
    async def _rollback(self) -> None:
        """Drop what is staged and roll back."""


class _SQLiteTransaction(Transaction):
    def __init__(self, database: Database, dialect: Dialect, dbapi_connection: Any) -> None:
        super().__init__(database, dialect)
        self._aiosqlite = dbapi_connection._connection
        self._conn: sqlite3.Connection = self._aiosqlite._conn
        self._inline = type(dbapi_connection) is _InlineConnection
        self._dbapi_connection = dbapi_connection
        self._turn = SQLiteWriteTurn.of(database.engine)  # taken before the first statement runs

    async def _in_thread(self, function: Callable[[], Any]) -> Any:
        try:
            return await self._aiosqlite._execute(function)
        except asyncio.CancelledError:
            # The statement goes on in the thread: this connection must not be used from the loop's
            # thread again (a rollback there would wait on it), so it is invalidated on the way out.
            self.interrupted = True
            raise

    async def _run(self, entry: _Compiled, values: Any, *, many: bool, rows: bool) -> Any:
        if self._turn is not None:
            # The write turn from the first statement to the end, not from the start of the block: a
            # request that checks its input before writing (or stages everything until its commit, as
            # the track API) does not hold the other writers while it does.
            turn, self._turn = self._turn, None
            await turn.take(self._dbapi_connection)
        try:
            # executemany always runs in the connection's thread, as a session's does (servicekit.db).
            outcome = _run_inline(self._conn, entry.sql, values) if self._inline and not many else None
            if outcome is None:
                outcome = await self._in_thread(
                    partial(_execute_waiting, self._conn, many, entry.sql, values, busy_wait=self._inline)
                )
        except sqlite3.Error as error:
            raise _wrap(error, entry.sql, values) from error
        _description, fetched, rowcount, _lastrowid = outcome
        return fetched, rowcount

    async def _commit(self) -> None:
        await self._flush()
        await self._end(True)

    async def _rollback(self) -> None:
        self._staged.clear()
        await self._end(False)

    async def _end(self, commit: bool) -> None:
        if not self._conn.in_transaction:
            return
        try:
            if self._inline and _end_inline(self._conn, commit):
                return
            # An inline connection's busy timeout is 0: in the thread it waits with the usual one. A
            # threaded connection (sqlite_inline=False) has the usual one already.
            await self._in_thread(
                partial(_end_waiting, self._conn, commit)
                if self._inline
                else (self._conn.commit if commit else self._conn.rollback)
            )
        except sqlite3.Error as error:
            raise _wrap(error, "COMMIT" if commit else "ROLLBACK", None) from error


class _PostgresTransaction(Transaction):
    """BEGIN goes with the first statement run, so a transaction of staged writes alone can skip it."""

    def __init__(self, database: Database, dialect: Dialect, driver_connection: Any) -> None:
        super().__init__(database, dialect)
        self._conn = driver_connection
        self._transaction = driver_connection.transaction()
        self._begun = False

    async def _run(
        self, entry: _Compiled, values: Any, *, many: bool, rows: bool, alone: bool = False
    ) -> Any:
        if not self._begun and not alone:
            await self._transaction.start()
            self._begun = True
        try:
            if many:
                await self._conn.executemany(entry.sql, values)  # atomic by itself (asyncpg >= 0.22)
                return [], -1
            if rows:
                return await self._conn.fetch(entry.sql, *values), -1
            status: str = await self._conn.execute(entry.sql, *values)
        except Exception as error:
            if not hasattr(error, "sqlstate"):
                raise
            raise _wrap(error, entry.sql, values) from error
        last = status.rpartition(" ")[2]
        return [], int(last) if last.isdigit() else -1

    async def _commit(self) -> None:
        if not self._begun and len(self._staged) == 1:
            entry, values, many = self._staged.pop()
            await self._run(entry, values, many=many, rows=False, alone=True)
            return
        await self._flush()
        if self._begun:
            await self._transaction.commit()

    async def _rollback(self) -> None:
        self._staged.clear()
        if self._begun:
            await self._transaction.rollback()


class Lease:
    """`Database.transaction()`: checks out a connection on entry and yields the transaction; commits when
    the block succeeds, rolls back when it raises, and gives the connection back (a class rather than an
    `asynccontextmanager`: this is on every lean writer's path)."""

    __slots__ = ("_database", "_raw", "_transaction")

    def __init__(self, database: Database) -> None:
        self._database = database

    async def __aenter__(self) -> Transaction:
        database = self._database
        engine = database.engine
        raw = await engine.raw_connection()
        try:
            if database.is_sqlite:
                dbapi_connection = raw.dbapi_connection
                transaction: Transaction = _SQLiteTransaction(database, engine.dialect, dbapi_connection)
            else:
                transaction = _PostgresTransaction(database, engine.dialect, raw.driver_connection)
        except BaseException:
            await _give_back(database, raw, failed=True)
            raise
        self._raw, self._transaction = raw, transaction
        return transaction

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        commit = exc_type is None
        transaction = self._transaction
        if transaction.interrupted:
            # As SQLAlchemy does with a session's connection interrupted mid-statement: closed, not reused
            # (SQLite rolls back what it held when the statement ends and the connection closes).
            await _give_back(self._database, self._raw, failed=True, interrupted=True)
            return
        failed = True
        try:
            await (transaction._commit() if commit else transaction._rollback())
            failed = False
        except BaseException:
            if commit:  # a staged write or the COMMIT failed: end the transaction before handing it back
                with contextlib.suppress(Exception):
                    await transaction._rollback()
                    failed = False
            raise
        finally:
            await _give_back(self._database, self._raw, failed=failed)
        if commit:
            for hook in _commit_hooks:
                hook(transaction)


async def _give_back(database: Database, raw: Any, *, failed: bool, interrupted: bool = False) -> None:
    """Return the connection to the pool (releasing the write turn); a connection whose transaction could
    not be ended is invalidated instead of being handed to the next caller in an unknown state."""
    turn = SQLiteWriteTurn.of(database.engine)
    if turn is not None:
        turn.release(raw.dbapi_connection)
    if interrupted:
        await greenlet_spawn(raw.invalidate)
        await greenlet_spawn(raw.close)
        return
    if failed:
        if database.is_sqlite:
            conn = raw.dbapi_connection._connection._conn
            if conn.in_transaction:
                try:
                    conn.rollback()
                except sqlite3.Error:
                    await greenlet_spawn(raw.invalidate)
        elif not raw.driver_connection.is_closed() and raw.driver_connection.is_in_transaction():
            await greenlet_spawn(raw.invalidate)
    await greenlet_spawn(raw.close)
