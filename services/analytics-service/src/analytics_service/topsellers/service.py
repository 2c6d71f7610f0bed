"""Best sellers over a date range, read from the per-day x SKU rollup (never from raw events)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from analytics_service.periods import DateRange
from analytics_service.topsellers.schemas import TopProduct, TopProducts
from analytics_service.warehouse.models import DailyProductRollup

Ranking = Literal["revenue", "units"]


async def top_products(
    connection: AsyncConnection, span: DateRange, *, by: Ranking, limit: int, currency: str
) -> TopProducts:
    """The `limit` SKUs with the most revenue (or units) in the range, ties broken by SKU."""
    table = DailyProductRollup
    units = func.sum(col(table.units)).label("units")
    revenue = func.sum(col(table.revenue_minor)).label("revenue")
    in_range = (col(table.day) >= span.start, col(table.day) <= span.end)
    per_sku = (
        select(col(table.sku), units, func.sum(col(table.orders)), revenue, func.sum(col(table.views)))
        .where(*in_range)
        .group_by(col(table.sku))
        .having(units > 0)
    )
    ranked = per_sku.order_by((revenue if by == "revenue" else units).desc(), col(table.sku)).limit(limit)
    items = [
        TopProduct(
            sku=sku,
            units=int(sold or 0),
            orders=int(orders or 0),
            revenue=round(int(minor or 0) / 100, 2),
            views=int(views or 0),
        )
        for sku, sold, orders, minor, views in (await connection.execute(ranked)).all()
    ]
    sold = per_sku.subquery()
    skus, total = (
        await connection.execute(select(func.count(), func.coalesce(func.sum(sold.c.revenue), 0)))
    ).one()
    return TopProducts(
        start=span.start,
        end=span.end,
        currency=currency,
        by=by,
        skus_sold=int(skus),
        revenue_total=round(int(total) / 100, 2),
        items=items,
    )
