"""What the models read from the analytics store (filled by the consumers), as plain rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.warehouse.models import (
    ActivityEvent,
    DailyProductRollup,
    OrderFact,
    OrderLineFact,
    ProductFact,
    SkuStock,
)

NOT_COUNTED = ("cancelled", "refunded")
PRODUCT_VIEWED = "Product Viewed"


def _counted() -> list[ColumnElement[bool]]:
    return [
        col(OrderFact.placed).is_(True),
        col(OrderFact.status).not_in(NOT_COUNTED),
        col(OrderFact.customer_id).is_not(None),
    ]


async def units_sold(
    session: AsyncSession, *, first: date, last: date
) -> dict[tuple[str, str], dict[date, float]]:
    """Units sold per (SKU, location) and day from the daily product rollup."""
    rows = await session.execute(
        select(
            col(DailyProductRollup.sku),
            col(DailyProductRollup.location_id),
            col(DailyProductRollup.day),
            col(DailyProductRollup.units),
        ).where(
            col(DailyProductRollup.day) >= first,
            col(DailyProductRollup.day) <= last,
            col(DailyProductRollup.units) != 0,
        )
    )
    series: dict[tuple[str, str], dict[date, float]] = defaultdict(dict)
    for sku, location, day, units in rows.all():
        series[(sku, location)][day] = float(units)
    return series


async def purchases(
    session: AsyncSession, *, since: datetime | None = None
) -> list[tuple[str, str, datetime]]:
    """(customer, SKU, placed at) of every line with a positive quantity of a counted order."""
    conditions = [*_counted(), col(OrderLineFact.quantity) > 0]
    if since is not None:
        conditions.append(col(OrderFact.placed_at) >= since)
    rows = await session.execute(
        select(col(OrderFact.customer_id), col(OrderLineFact.sku), col(OrderFact.placed_at))
        .join(OrderLineFact, col(OrderLineFact.order_id) == col(OrderFact.order_id))
        .where(and_(*conditions))
    )
    return [(customer, sku, placed_at) for customer, sku, placed_at in rows.all() if customer and placed_at]


async def order_values(session: AsyncSession) -> list[tuple[str, date, float]]:
    """(customer, day, net total in minor units) of every counted order."""
    rows = await session.execute(
        select(col(OrderFact.customer_id), col(OrderFact.day), col(OrderFact.total_minor)).where(
            and_(*_counted(), col(OrderFact.day).is_not(None))
        )
    )
    return [(customer, day, float(total)) for customer, day, total in rows.all() if customer and day]


async def customer_history(
    session: AsyncSession, customer_id: str, *, views_since: datetime, limit: int = 2000
) -> tuple[list[tuple[str, datetime]], list[tuple[str, datetime]]]:
    """A customer's purchased and viewed SKUs with their time (most recent first, bounded)."""
    bought = await session.execute(
        select(col(OrderLineFact.sku), col(OrderFact.placed_at))
        .join(OrderLineFact, col(OrderLineFact.order_id) == col(OrderFact.order_id))
        .where(*_counted(), col(OrderFact.customer_id) == customer_id, col(OrderLineFact.quantity) > 0)
        .order_by(col(OrderFact.placed_at).desc())
        .limit(limit)
    )
    viewed = await session.execute(
        select(col(ActivityEvent.sku), col(ActivityEvent.occurred_at))
        .where(
            col(ActivityEvent.customer_id) == customer_id,
            col(ActivityEvent.event) == PRODUCT_VIEWED,
            col(ActivityEvent.sku).is_not(None),
            col(ActivityEvent.occurred_at) >= views_since,
        )
        .order_by(col(ActivityEvent.occurred_at).desc())
        .limit(limit)
    )
    return [(sku, at) for sku, at in bought.all() if at], [(sku, at) for sku, at in viewed.all() if sku]


async def available_stock(session: AsyncSession, skus: set[str] | None = None) -> dict[tuple[str, str], int]:
    """Available units per (SKU, location)."""
    statement = select(col(SkuStock.sku), col(SkuStock.location_id), col(SkuStock.available))
    if skus is not None:
        statement = statement.where(col(SkuStock.sku).in_(sorted(skus)))
    rows = await session.execute(statement)
    return {(sku, location): int(available) for sku, location, available in rows.all()}


async def unavailable(session: AsyncSession, skus: set[str]) -> set[str]:
    """The SKUs not to recommend: unknown to the catalog, not published (status other than active), or
    with stock records whose available total is 0 or less (a SKU without stock records is not judged)."""
    if not skus:
        return set()
    ordered = sorted(skus)
    published = set(
        (
            await session.execute(
                select(col(ProductFact.sku)).where(
                    col(ProductFact.sku).in_(ordered), col(ProductFact.status) == "active"
                )
            )
        )
        .scalars()
        .all()
    )
    stock = await session.execute(
        select(col(SkuStock.sku), func.sum(col(SkuStock.available)))
        .where(col(SkuStock.sku).in_(ordered))
        .group_by(col(SkuStock.sku))
    )
    sold_out = {sku for sku, total in stock.all() if (total or 0) <= 0}
    return (skus - published) | sold_out


async def sku_known(session: AsyncSession, sku: str) -> bool:
    """Whether the catalog or the sales know the SKU."""
    if await session.get(ProductFact, sku) is not None:
        return True
    found = await session.execute(
        select(col(DailyProductRollup.sku)).where(col(DailyProductRollup.sku) == sku).limit(1)
    )
    return found.first() is not None
