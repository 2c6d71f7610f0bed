"""The shop history plan and the analytics seeder: months of visits, funnels, spend, orders."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select

from analytics_service.config import ALEMBIC_INI
from ecom_cli.seeders import shop_history
from ecom_cli.seeders.analytics import SEEDER
from ecom_cli.seeding import SeedContext
from servicekit.db import Database
from servicekit.migrations import upgrade

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


def test_the_plan_is_reproducible_and_ends_before_now() -> None:
    first, second = shop_history.plan(0.5, now=NOW), shop_history.plan(0.5, now=NOW)

    assert first.orders == second.orders
    assert first.visits == second.visits
    assert max(order.placed_at for order in first.orders) <= NOW
    assert (first.end - first.start).days + 1 == shop_history.HISTORY_DAYS


def test_weekends_bring_more_visits_than_weekdays() -> None:
    history = shop_history.plan(1, now=NOW)
    per_weekday = Counter(visit.started_at.weekday() for visit in history.visits)

    assert min(per_weekday[5], per_weekday[6]) > max(per_weekday[d] for d in range(4))


def test_sales_have_a_long_tail_of_slow_sellers() -> None:
    history = shop_history.plan(1, now=NOW)
    units = Counter(dict.fromkeys(history.skus, 0))
    for order in history.orders:
        for sku, quantity in order.lines:
            units[sku] += quantity
    ranked = [n for _, n in units.most_common()]
    top_fifth = sum(ranked[: len(ranked) // 5])

    assert top_fifth > 0.5 * sum(ranked)
    assert ranked[-1] < 0.1 * ranked[0]


def test_buyers_come_back_and_some_orders_are_cancelled_or_refunded() -> None:
    history = shop_history.plan(1, now=NOW)
    orders_per_customer = Counter(order.customer for order in history.orders)
    outcomes = Counter(order.statuses[-1] if order.statuses else "placed" for order in history.orders)

    assert sum(1 for n in orders_per_customer.values() if n > 1) > 10
    assert outcomes["cancelled"] > 0
    assert outcomes["refunded"] > 0
    assert outcomes["delivered"] > len(history.orders) / 2


def test_paused_campaigns_spend_nothing() -> None:
    history = shop_history.plan(1, now=NOW)
    first, last = shop_history.CAMPAIGN_WINDOWS["influencer"]
    spent = {(history.end - day).days for day, _, campaign, _ in history.spend if campaign == "influencer"}

    assert spent
    assert all(last <= age <= first for age in spent)


async def _seed(url: str, shared: dict[str, object]) -> str:
    console = Console(file=io.StringIO())
    with Progress(console=console) as progress:
        return await SEEDER.seed(SeedContext(url, 0.1, console, progress, shared))


async def _outbox_and_spend(url: str) -> tuple[int, int]:
    from analytics_service.warehouse.models import MarketingSpend
    from servicekit.events.models import OutboxMessage

    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            outbox = await session.scalar(select(func.count()).select_from(OutboxMessage))
            spend = await session.scalar(select(func.count()).select_from(MarketingSpend))
        return int(outbox or 0), int(spend or 0)
    finally:
        await database.dispose()


def test_the_seeder_tracks_every_visit_and_names_the_placed_orders(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}"
    upgrade(ALEMBIC_INI, url)
    history = shop_history.plan(0.1)
    placed = {
        order.number: (f"order-{n}", f"customer-{order.customer}") for n, order in enumerate(history.orders)
    }

    summary = asyncio.run(_seed(url, {"orders": placed}))

    outbox, spend = asyncio.run(_outbox_and_spend(url))
    assert "refused" not in summary
    assert f"{len(history.visits)} storefront visits" in summary
    assert f"{outbox} events tracked" in summary
    assert spend == len({(d, c, k) for d, c, k, _ in history.spend})
    assert not asyncio.run(SEEDER.is_empty(url))
