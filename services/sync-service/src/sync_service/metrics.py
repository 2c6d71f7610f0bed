"""sync-service's Prometheus metrics: deliveries, their latency, circuit state and drift in-process;
listings per channel and status read from the database at a scrape (at most every
`SYNC_METRICS_REFRESH_SECONDS`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from servicekit.metrics import DatabaseMetric, DatabaseMetrics, Samples
from sync_service.channels.models import Channel
from sync_service.listings.models import Listing

DELIVERIES = Counter(
    "sync_deliveries_total",
    "Pushes to channels by outcome (succeeded, failed, retried)",
    ["channel", "outcome"],
)
DELIVERY_LATENCY = Histogram(
    "sync_delivery_latency_seconds",
    "From the event that changed a listing to the channel's acknowledgement",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CIRCUIT_OPEN = Gauge("sync_circuit_open", "1 while the channel's circuit breaker is open", ["channel"])
BURST_HOLDS = Counter(
    "sync_burst_holds_total",
    "SKUs held back because they changed again within SYNC_PUSH_COALESCE_WINDOW_SECONDS of their last push, "
    "then pushed once with their latest state",
    ["channel"],
)
DRIFT_DETECTED = Counter(
    "sync_drift_detected_total",
    "Listings a channel acknowledged differently from what was pushed",
    ["channel"],
)


async def _listings(connection: AsyncConnection) -> Samples:
    rows = await connection.execute(
        select(col(Channel.code), col(Listing.status), func.count())
        .join(Channel, col(Channel.id) == col(Listing.channel_id))
        .group_by(col(Channel.code), col(Listing.status))
    )
    return [((code, status), float(count)) for code, status, count in rows.all()]


SYNC_METRICS = DatabaseMetrics(
    [
        DatabaseMetric(
            "sync_listings", "Listings per channel and status", _listings, labels=("channel", "status")
        )
    ]
)
