"""Business metrics of product-service on /metrics (Prometheus), read from the database at a scrape at
most every `PRODUCT_METRICS_REFRESH_SECONDS`: stock-outs, expired reservations, import rows."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from product_service.inventory.models import Reservation, StockLevel
from product_service.transfer.models import ImportJob
from servicekit.metrics import DatabaseMetric, DatabaseMetrics, Samples


async def _stock_outs(connection: AsyncConnection) -> Samples:
    """SKUs with stock rows whose available quantity (on hand less reserved) is nowhere above zero."""
    per_sku = (
        select(col(StockLevel.sku))
        .group_by(col(StockLevel.sku))
        .having(func.max(col(StockLevel.on_hand) - col(StockLevel.reserved)) <= 0)
        .subquery()
    )
    count = await connection.scalar(select(func.count()).select_from(per_sku))
    return [((), float(count or 0))]


async def _stock_out_locations(connection: AsyncConnection) -> Samples:
    available = col(StockLevel.on_hand) - col(StockLevel.reserved)
    count = await connection.scalar(select(func.count()).select_from(StockLevel).where(available <= 0))
    return [((), float(count or 0))]


async def _reservations_expired(connection: AsyncConnection) -> Samples:
    count = await connection.scalar(
        select(func.count()).select_from(Reservation).where(col(Reservation.status) == "expired")
    )
    return [((), float(count or 0))]


async def _import_rows_processed(connection: AsyncConnection) -> Samples:
    total = await connection.scalar(select(func.coalesce(func.sum(col(ImportJob.rows_processed)), 0)))
    return [((), float(total or 0))]


async def _import_rows_failed(connection: AsyncConnection) -> Samples:
    total = await connection.scalar(select(func.coalesce(func.sum(col(ImportJob.rows_failed)), 0)))
    return [((), float(total or 0))]


PRODUCT_METRICS = DatabaseMetrics(
    [
        DatabaseMetric(
            "product_stock_outs", "SKUs with stock rows and nothing available anywhere", _stock_outs
        ),
        DatabaseMetric(
            "product_stock_out_locations",
            "Stock rows (SKU at a location) with nothing available",
            _stock_out_locations,
        ),
        DatabaseMetric(
            "product_reservations_expired",
            "Reservations whose hold expired (status expired)",
            _reservations_expired,
            kind="counter",
        ),
        DatabaseMetric(
            "product_import_rows_processed",
            "Rows read by product imports",
            _import_rows_processed,
            kind="counter",
        ),
        DatabaseMetric(
            "product_import_rows_failed",
            "Rows of product imports refused (with a row error)",
            _import_rows_failed,
            kind="counter",
        ),
    ]
)
