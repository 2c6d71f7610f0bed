"""Business metrics of analytics-service on /metrics (Prometheus).

Today's KPIs (UTC day, from the channel rollup) are read from the database at a scrape, at most every
`ANALYTICS_METRICS_REFRESH_SECONDS`, so ops can alert on a collapse of orders, revenue or conversion.
Counters of tracked events (accepted and rejected by the track API, stored or skipped by the consumer)
and the rollup lag are per process (`tracking.service`, `warehouse.activity`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from analytics_service.warehouse.models import DailyChannelRollup
from servicekit.metrics import DatabaseMetric, DatabaseMetrics, Samples


async def _today(connection: AsyncConnection) -> tuple[int, int, int, int]:
    row = (
        await connection.execute(
            select(
                func.coalesce(func.sum(col(DailyChannelRollup.sessions)), 0),
                func.coalesce(func.sum(col(DailyChannelRollup.sessions_purchased)), 0),
                func.coalesce(func.sum(col(DailyChannelRollup.orders)), 0),
                func.coalesce(func.sum(col(DailyChannelRollup.revenue_minor)), 0),
            ).where(col(DailyChannelRollup.day) == datetime.now(UTC).date())
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


async def _orders(connection: AsyncConnection) -> Samples:
    return [((), float((await _today(connection))[2]))]


async def _revenue(connection: AsyncConnection) -> Samples:
    return [((), (await _today(connection))[3] / 100)]


async def _sessions(connection: AsyncConnection) -> Samples:
    return [((), float((await _today(connection))[0]))]


async def _conversion(connection: AsyncConnection) -> Samples:
    sessions, purchased, _, _ = await _today(connection)
    return [((), purchased / sessions if sessions else 0.0)]


ANALYTICS_METRICS = DatabaseMetrics(
    [
        DatabaseMetric(
            "analytics_orders_today", "Orders counted today (UTC), not cancelled or refunded", _orders
        ),
        DatabaseMetric(
            "analytics_revenue_today", "Revenue today (UTC), reporting currency, major units", _revenue
        ),
        DatabaseMetric("analytics_sessions_today", "Sessions started today (UTC)", _sessions),
        DatabaseMetric(
            "analytics_conversion_rate_today",
            "Sessions with Order Completed / sessions, today (UTC)",
            _conversion,
        ),
    ]
)
