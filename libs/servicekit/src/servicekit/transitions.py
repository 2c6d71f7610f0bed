"""State transitions as compare-and-set: the expected state is in the UPDATE's WHERE, and the number of
rows it touched says whether this writer won.

Reading a row, checking its state in Python and writing it back lets two concurrent requests (or a
request and an event) both pass the check. A conditional UPDATE cannot: PostgreSQL re-evaluates the
WHERE on the newest row version once it holds the row lock, and SQLite runs one writer at a time. Do the
transition first and the effects that follow from it (stock, ledger, events) only when it was won, in
the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update

from servicekit.errors import Conflict


async def compare_and_set(session: AsyncSession, statement: Update, *, rows: int = 1) -> bool:
    """Run a conditional UPDATE; True when it changed exactly `rows` rows (the expected state held)."""
    result: Any = await session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount or 0) == rows


async def compare_and_set_or_conflict(
    session: AsyncSession, statement: Update, *, detail: str, rows: int = 1
) -> None:
    """Run a conditional UPDATE; 409 Conflict (problem+json) with `detail` when another writer got there
    first, so the caller's transaction and its effects roll back."""
    if not await compare_and_set(session, statement, rows=rows):
        raise Conflict(detail)
