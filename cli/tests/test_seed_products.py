"""`ecom seed` for product-service: a migrated database gets a realistic, valid catalog, once."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select

from ecom_cli.commands.seed import database_url_for, run_seeders
from ecom_cli.seeders.products import SEEDER
from product_service.catalog.models import Product, Variant
from product_service.config import ALEMBIC_INI
from product_service.inventory.models import Location, StockLevel
from product_service.pricing.models import PriceRecord
from product_service.suppliers.models import SupplierOffer
from servicekit.db import Database
from servicekit.events.models import OutboxMessage
from servicekit.migrations import upgrade


async def _count(url: str, column: object) -> int:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(column)) or 0)  # type: ignore[arg-type]
    finally:
        await database.dispose()


def test_catalog_seed_creates_products_prices_stock_and_suppliers_once(tmp_path: Path) -> None:
    url = database_url_for(SEEDER, tmp_path)
    upgrade(ALEMBIC_INI, url)
    console = Console(file=io.StringIO(), width=200)

    first = asyncio.run(run_seeders([SEEDER], var_dir=tmp_path, scale=1.0, if_empty=True, console=console))
    second = asyncio.run(run_seeders([SEEDER], var_dir=tmp_path, scale=1.0, if_empty=True, console=console))

    assert (first, second) == (1, 0)
    assert asyncio.run(_count(url, Product)) == 20
    assert asyncio.run(_count(url, Variant)) == 40
    assert asyncio.run(_count(url, Location)) == 3
    assert asyncio.run(_count(url, StockLevel)) >= 40
    assert asyncio.run(_count(url, PriceRecord)) >= 80
    assert asyncio.run(_count(url, SupplierOffer)) == 40
    assert asyncio.run(_count(url, OutboxMessage)) >= 20


def test_catalog_seed_uses_the_skus_the_customer_seeder_orders(tmp_path: Path) -> None:
    url = database_url_for(SEEDER, tmp_path)
    upgrade(ALEMBIC_INI, url)
    asyncio.run(
        run_seeders(
            [SEEDER], var_dir=tmp_path, scale=1.0, if_empty=False, console=Console(file=io.StringIO())
        )
    )

    async def skus() -> set[str]:
        database = Database(url)
        try:
            async with database.sessionmaker() as session:
                return set((await session.execute(select(Variant.sku))).scalars())
        finally:
            await database.dispose()

    assert {f"SKU-{n:04d}" for n in range(1, 41)} <= asyncio.run(skus())
