"""Funnel by channel (from the channel rollup) and monthly retention cohorts (from order facts)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from analytics_service.insights.schemas import (
    Cohort,
    Cohorts,
    Funnel,
    FunnelChannel,
    FunnelStep,
    ProductDay,
    ProductSeries,
    TopProduct,
)
from analytics_service.periods import DateRange, month_index
from analytics_service.warehouse.models import DailyChannelRollup, DailyProductRollup, OrderFact, ProductFact
from analytics_service.warehouse.rollups import NOT_COUNTED_STATUSES
from servicekit.errors import NotFound

STEPS = (
    ("sessions", "sessions"),
    ("viewed", "sessions_viewed"),
    ("added", "sessions_added"),
    ("checkout", "sessions_checkout"),
    ("purchased", "sessions_purchased"),
)


def _steps(counts: list[int]) -> list[FunnelStep]:
    steps = []
    for index, ((name, _), count) in enumerate(zip(STEPS, counts, strict=True)):
        previous = counts[index - 1] if index else None
        rate = None if not previous else round(count / previous, 6)
        steps.append(
            FunnelStep(
                step=name,
                sessions=count,
                conversion_from_previous=rate,
                drop_off=None if rate is None else round(1 - rate, 6),
            )
        )
    return steps


async def funnel(connection: AsyncConnection, span: DateRange, *, channel: str | None) -> Funnel:
    table = DailyChannelRollup
    statement = (
        select(col(table.channel), *[func.sum(getattr(table, column)) for _, column in STEPS])
        .where(col(table.day) >= span.start, col(table.day) <= span.end)
        .group_by(col(table.channel))
        .order_by(col(table.channel))
    )
    if channel is not None:
        statement = statement.where(col(table.channel) == channel)
    channels: list[FunnelChannel] = []
    total = [0] * len(STEPS)
    for row in (await connection.execute(statement)).all():
        counts = [int(value or 0) for value in row[1:]]
        if not counts[0] and not any(counts):
            continue
        total = [a + b for a, b in zip(total, counts, strict=True)]
        channels.append(FunnelChannel(channel=row[0], steps=_steps(counts)))
    return Funnel(start=span.start, end=span.end, total=_steps(total), channels=channels)


def _month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


async def cohorts(connection: AsyncConnection, span: DateRange) -> Cohorts:
    """Customers grouped by the month of their first counted order (within the range); for each later
    month up to the range's end, the share of them that placed a counted order in it."""
    counted = [col(OrderFact.placed).is_(True), col(OrderFact.status).notin_(list(NOT_COUNTED_STATUSES))]
    first = (
        select(col(OrderFact.customer_id), func.min(col(OrderFact.day)).label("first_day"))
        .where(*counted, col(OrderFact.customer_id).isnot(None))
        .group_by(col(OrderFact.customer_id))
        .subquery()
    )
    statement = (
        select(first.c.first_day, col(OrderFact.customer_id), col(OrderFact.day))
        .join(first, first.c.customer_id == col(OrderFact.customer_id))
        .where(
            *counted,
            first.c.first_day >= span.start,
            first.c.first_day <= span.end,
            col(OrderFact.day) <= span.end,
        )
    )
    active: dict[int, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for first_day, customer_id, day in (await connection.execute(statement)).all():
        start_month = month_index(first_day)
        active[start_month][month_index(day) - start_month].add(customer_id)
    last = month_index(span.end)
    result = []
    for start_month in sorted(active):
        size = len(active[start_month][0])
        retention = [
            round(len(active[start_month].get(k, ())) / size, 6) for k in range(last - start_month + 1)
        ]
        result.append(Cohort(cohort=_month_label(start_month), customers=size, retention=retention))
    return Cohorts(start=span.start, end=span.end, cohorts=result)


PRODUCT_SUMS = ("views", "adds", "removes", "orders", "units", "revenue_minor", "cogs_minor")


async def product_series(connection: AsyncConnection, sku: str, span: DateRange) -> ProductSeries:
    """A SKU's daily views, cart adds and sales (every location); NotFound when the SKU is neither in
    the catalog nor in any event."""
    fact = (
        await connection.execute(
            select(col(ProductFact.category_id), col(ProductFact.status)).where(col(ProductFact.sku) == sku)
        )
    ).first()
    table = DailyProductRollup
    if fact is None:
        seen = await connection.scalar(select(func.count()).select_from(table).where(col(table.sku) == sku))
        if not seen:
            raise NotFound(f"There is no SKU {sku!r} in the catalog or the events.")
    rows = await connection.execute(
        select(col(table.day), *[func.sum(getattr(table, name)) for name in PRODUCT_SUMS])
        .where(col(table.sku) == sku, col(table.day) >= span.start, col(table.day) <= span.end)
        .group_by(col(table.day))
    )
    by_day = {row[0]: [int(v or 0) for v in row[1:]] for row in rows.all()}
    days = []
    for offset in range(span.days):
        day = span.start + timedelta(days=offset)
        views, adds, removes, orders, units, revenue, cogs = by_day.get(day, [0] * len(PRODUCT_SUMS))
        days.append(
            ProductDay(
                day=day,
                views=views,
                adds=adds,
                removes=removes,
                orders=orders,
                units=units,
                revenue=revenue / 100,
                cost_of_goods=cogs / 100,
            )
        )
    return ProductSeries(
        sku=sku,
        category_id=fact[0] if fact else None,
        status=fact[1] if fact else None,
        start=span.start,
        end=span.end,
        days=days,
    )


async def top_products(connection: AsyncConnection, span: DateRange, *, limit: int) -> list[TopProduct]:
    """SKUs by revenue over the range (then units, views)."""
    table = DailyProductRollup
    revenue = func.sum(col(table.revenue_minor))
    statement = (
        select(
            col(table.sku),
            func.sum(col(table.views)),
            func.sum(col(table.adds)),
            func.sum(col(table.orders)),
            func.sum(col(table.units)),
            revenue,
        )
        .where(col(table.day) >= span.start, col(table.day) <= span.end)
        .group_by(col(table.sku))
        .order_by(
            revenue.desc(),
            func.sum(col(table.units)).desc(),
            func.sum(col(table.views)).desc(),
            col(table.sku),
        )
        .limit(limit)
    )
    result = []
    for sku, views, adds, orders, units, total in (await connection.execute(statement)).all():
        result.append(
            TopProduct(
                sku=sku,
                views=int(views or 0),
                adds=int(adds or 0),
                orders=int(orders or 0),
                units=int(units or 0),
                revenue=int(total or 0) / 100,
                view_to_purchase=round(int(orders or 0) / int(views), 6) if views else None,
            )
        )
    return result
