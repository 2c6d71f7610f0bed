"""compare_and_set: of concurrent writers expecting the same state, exactly one wins."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import update
from sqlmodel import col

from servicekit.db import Database
from servicekit.transitions import compare_and_set

from .support import Item


async def test_of_concurrent_compare_and_sets_of_one_row_exactly_one_wins(database: Database) -> None:
    async with database.session() as session:
        item = Item(name=f"cas-{uuid.uuid4().hex[:8]}", version=1)
        session.add(item)
    assert item.id is not None

    async def advance() -> bool:
        async with database.session() as session:
            return await compare_and_set(
                session, update(Item).where(col(Item.id) == item.id, col(Item.version) == 1).values(version=2)
            )

    results = await asyncio.gather(*(advance() for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_compare_and_set_of_a_missing_row_loses(database: Database) -> None:
    async with database.session() as session:
        assert not await compare_and_set(session, update(Item).where(col(Item.id) == -1).values(version=2))
