"""Many rows through one statement, cheaply: the activity fold's writes (a few hundred rows of a batch per
statement).

On PostgreSQL a Core executemany (asyncpg binds the values natively). On SQLite SQLAlchemy's per-value
bind processing costs more than SQLite's own work on the row, so there the statement is compiled once and
the values go straight to the driver as SQLAlchemy's types would store them: a moment as UTC text
(`YYYY-MM-DD HH:MM:SS.ffffff`, what `UTCDateTime` stores), a day as an ISO date, a bool as 0/1, a dict as
JSON. The stored values are identical either way (tests read them back through the models). Lookups
by many ids likewise pass the ids as one JSON array on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

IN_CHUNK = 1000  # ids per IN (...) on PostgreSQL
_COMPILED: dict[tuple[int, tuple[str, ...]], tuple[Any, str, tuple[int, ...]]] = {}


def is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def sqlite_moment(value: datetime) -> str:
    """A moment as `UTCDateTime` stores it on SQLite (a naive one is taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


class DayTexts(dict[date, str]):
    """Days as SQLite stores them (ISO text), each formatted once: `texts[day]` (a batch's many rows
    share a few days)."""

    def __missing__(self, day: date) -> str:
        text = self[day] = day.isoformat()
        return text


def sqlite_read_moment(value: str) -> datetime:
    """A `UTCDateTime` as stored on SQLite, read back (aware, UTC)."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def sqlite_value(value: Any) -> Any:
    """A Python value as SQLAlchemy's SQLite types store it."""
    if value is None or type(value) in (str, int):
        return value
    if isinstance(value, datetime):
        return sqlite_moment(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _compiled(statement: Any, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, tuple[int, ...]]:
    key = (id(statement), columns)
    cached = _COMPILED.get(key)
    if cached is None or cached[0] is not statement:
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        order = tuple(columns.index(name) for name in compiled.positiontup)
        cached = (statement, compiled.string, order)
        _COMPILED[key] = cached
    return cached[1], cached[2]


async def executemany(
    session: AsyncSession,
    statement: Any,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    converted: bool = False,
) -> None:
    """Run `statement` (a Core INSERT/UPDATE whose bind names are `columns`) once per row of values in
    `columns` order. `converted`: the rows already hold SQLite's stored forms (see `sqlite_value`)."""
    if not rows:
        return
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        await connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    sql, order = _compiled(statement, columns, dialect)
    if converted:
        # the values in the compiled statement's order, picked in C (`itemgetter` of several indexes
        # returns a tuple): a fifth of a generator per row's time (the channel rollups' upserts)
        if order == tuple(range(len(columns))):
            values = list(rows)
        elif len(order) == 1:  # (one index: itemgetter would return the value, not a tuple)
            values = [(row[order[0]],) for row in rows]
        else:
            values = list(map(itemgetter(*order), rows))
    else:
        values = [tuple(sqlite_value(row[i]) for i in order) for row in rows]
    await connection.exec_driver_sql(sql, values)


async def select_in(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    key: str,
    ids: Collection[str],
    where: Mapping[str, str] | None = None,
) -> list[tuple[Any, ...]]:
    """`columns` (text columns: the values come back as stored) of the rows whose `key` is one of `ids`
    and whose columns equal `where`'s values. On SQLite one statement of a constant text, the ids passed
    as one JSON array (an IN list of a new length is a new statement text, compiled again, each batch);
    on PostgreSQL an IN list per chunk of `IN_CHUNK` ids."""
    if not ids:
        return []
    where = where or {}
    ids = list(ids)
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        conditions = "".join(f" AND {name} = ?" for name in where)
        found = await connection.exec_driver_sql(
            f"SELECT {', '.join(columns)} FROM {table.name} "
            f"WHERE {key} IN (SELECT value FROM json_each(?)){conditions}",
            (json.dumps(ids), *where.values()),
        )
        return [tuple(row) for row in found.all()]
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), IN_CHUNK):
        found = await connection.execute(
            select(*[table.c[name] for name in columns]).where(
                table.c[key].in_(ids[start : start + IN_CHUNK]),
                *[table.c[name] == value for name, value in where.items()],
            )
        )
        rows.extend(tuple(row) for row in found.all())
    return rows
