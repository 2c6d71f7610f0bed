"""The customers seeder: a migrated customer database gets customers, orders, consents, near-duplicates."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select

from customer_service.config import ALEMBIC_INI
from customer_service.customers.models import Customer
from customer_service.duplicates.models import DuplicateCandidate, Merge
from customer_service.orders.models import Order
from ecom_cli.seeders.customers import SEEDER
from ecom_cli.seeding import SeedContext
from servicekit.db import Database
from servicekit.events.models import OutboxMessage
from servicekit.migrations import upgrade


async def _count(url: str, table: type) -> int:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        await database.dispose()


async def _seed_async(url: str, scale: float) -> str:
    console = Console(file=io.StringIO())
    with Progress(console=console) as progress:
        return await SEEDER.seed(SeedContext(url, scale, console, progress))


async def _is_empty(url: str) -> bool:
    return await SEEDER.is_empty(url)


def _seed(url: str, scale: float) -> str:
    return asyncio.run(_seed_async(url, scale))


def test_seeder_fills_an_empty_database_with_customers_orders_and_duplicates(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'customer.db'}"
    upgrade(ALEMBIC_INI, url)
    assert asyncio.run(_is_empty(url))

    summary = _seed(url, 0.5)

    assert "customers" in summary
    assert asyncio.run(_count(url, Customer)) >= 50
    assert asyncio.run(_count(url, Order)) > 0
    duplicates = asyncio.run(_count(url, DuplicateCandidate)) + asyncio.run(_count(url, Merge))
    assert duplicates > 0
    assert asyncio.run(_count(url, OutboxMessage)) > 0
    assert not asyncio.run(_is_empty(url))


def test_seeding_is_reproducible(tmp_path: Path) -> None:
    first, second = (f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}" for n in ("a", "b"))
    for url in (first, second):
        upgrade(ALEMBIC_INI, url)

    assert _seed(first, 0.1) == _seed(second, 0.1)
