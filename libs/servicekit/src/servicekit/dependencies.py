"""FastAPI dependencies every service's routes use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database
from servicekit.lean import Transaction


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def database_dependency(request: Request) -> Database:
    """`get_database` as a dependency. Dependencies are `async def` on purpose: FastAPI runs a plain
    `def` dependency in its thread pool, a thread hop per request for an attribute read."""
    return get_database(request)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: commits when the route succeeds, rolls back when it raises."""
    async with get_database(request).session() as session:
        yield session


# scope="function": commit before the response is sent, so a client never reads an uncommitted write
# and a failed commit becomes an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(database_dependency)]


async def get_transaction(request: Request) -> AsyncIterator[Transaction]:
    """The request's lean transaction (`Database.transaction()`: Core statements, no ORM session), for
    hot write paths: commits when the route succeeds, rolls back when it raises."""
    async with get_database(request).transaction() as transaction:
        yield transaction


TransactionDep = Annotated[Transaction, Depends(get_transaction, scope="function")]
