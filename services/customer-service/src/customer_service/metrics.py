"""Business metrics of customer-service on /metrics (Prometheus).

Figures held in the database (customers, open duplicates, merges, quality, risk flags, import rows) are
read from it at a scrape, at most every `CUSTOMER_METRICS_REFRESH_SECONDS`; orders and revenue are
counters (`orders.metrics`) incremented when the transaction that placed an order commits.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from customer_service.customers.models import Customer
from customer_service.duplicates.models import DuplicateCandidate, Merge
from customer_service.imports.models import ImportJob
from customer_service.risk.models import RiskFlag
from servicekit.metrics import DatabaseMetric, DatabaseMetrics, Samples


async def _customers(connection: AsyncConnection) -> Samples:
    rows = await connection.execute(select(col(Customer.status), func.count()).group_by(col(Customer.status)))
    return [((status,), float(count)) for status, count in rows.all()]


async def _duplicates_open(connection: AsyncConnection) -> Samples:
    count = await connection.scalar(
        select(func.count()).select_from(DuplicateCandidate).where(col(DuplicateCandidate.status) == "open")
    )
    return [((), float(count or 0))]


async def _merges(connection: AsyncConnection) -> Samples:
    rows = await connection.execute(
        select(col(Merge.automatic), func.count())
        .where(col(Merge.undone_at).is_(None))
        .group_by(col(Merge.automatic))
    )
    counts = {bool(automatic): float(count) for automatic, count in rows.all()}
    return [(("automatic",), counts.get(True, 0.0)), (("manual",), counts.get(False, 0.0))]


async def _quality(connection: AsyncConnection) -> Samples:
    average = await connection.scalar(
        select(func.avg(col(Customer.quality_score))).where(col(Customer.status) == "active")
    )
    return [((), float(average or 0.0))]


async def _risk_flags(connection: AsyncConnection) -> Samples:
    rows = await connection.execute(select(col(RiskFlag.rule), func.count()).group_by(col(RiskFlag.rule)))
    return [((rule,), float(count)) for rule, count in rows.all()]


async def _import_rows_processed(connection: AsyncConnection) -> Samples:
    total = await connection.scalar(select(func.coalesce(func.sum(col(ImportJob.processed_rows)), 0)))
    return [((), float(total or 0))]


async def _import_rows_failed(connection: AsyncConnection) -> Samples:
    """Rows of failed jobs that were not imported (a failed import writes none of its refused rows)."""
    not_imported = col(ImportJob.total_rows) - col(ImportJob.processed_rows)
    total = await connection.scalar(
        select(func.coalesce(func.sum(not_imported), 0)).where(col(ImportJob.status) == "failed")
    )
    return [((), float(total or 0))]


CUSTOMER_METRICS = DatabaseMetrics(
    [
        DatabaseMetric("customers", "Customer profiles, by status", _customers, ("status",)),
        DatabaseMetric(
            "customer_duplicates_open", "Duplicate candidate pairs awaiting review", _duplicates_open
        ),
        DatabaseMetric("customer_merges", "Merges in effect (not undone), by kind", _merges, ("kind",)),
        DatabaseMetric(
            "customer_quality_score_average", "Mean data-quality score of active customers", _quality
        ),
        DatabaseMetric("customer_risk_flags_open", "Risk flags raised, by rule", _risk_flags, ("rule",)),
        DatabaseMetric(
            "customer_import_rows_processed",
            "Rows imported by customer imports",
            _import_rows_processed,
            kind="counter",
        ),
        DatabaseMetric(
            "customer_import_rows_failed",
            "Rows of failed customer imports that were not imported",
            _import_rows_failed,
            kind="counter",
        ),
    ]
)
