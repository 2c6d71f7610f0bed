"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from servicekit import lean

if TYPE_CHECKING:
    from servicekit.db import Database

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration in seconds",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published")
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published", ["topic"])
OUTBOX_PRUNED = Counter("outbox_pruned_total", "Published outbox rows deleted after the retention period")
OUTBOX_PUBLISH_FAILURES = Counter("outbox_publish_failures_total", "Failed outbox publish attempts")
OUTBOX_PUBLISH_LATENCY = Histogram(
    "outbox_publish_latency_seconds",
    "Time from outbox commit to broker acknowledgement",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EVENTS_PROCESSED = Counter(
    "events_processed_total", "Events handled successfully", ["consumer", "topic", "type"]
)
EVENTS_DUPLICATE = Counter(
    "events_duplicate_total", "Events skipped because the inbox had them", ["consumer", "topic"]
)
EVENTS_FAILED = Counter(
    "events_failed_total", "Failed handler attempts (each retry counts)", ["consumer", "topic", "type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered_total", "Events sent to the dead-letter topic", ["consumer", "topic"]
)
CONSUMER_LAG = Gauge("consumer_lag", "Messages behind the partition end", ["consumer", "topic", "partition"])


# --- business metrics --------------------------------------------------------------------------------

Samples = list[tuple[tuple[str, ...], float]]
MetricQuery = Callable[[AsyncConnection], Awaitable[Samples]]
DATABASE_METRICS_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DatabaseMetric:
    """A business figure read from the database: `query` returns (label values, value) pairs.

    `kind="counter"` is for a total that only grows (rows of an append-only table, a running sum);
    being read from the shared database, every replica reports the same value (aggregate with max)."""

    name: str
    documentation: str
    query: MetricQuery
    labels: tuple[str, ...] = ()
    kind: Literal["gauge", "counter"] = "gauge"


class DatabaseMetrics(Collector):
    """Business metrics computed from the database, cheaply: the `/metrics` route calls `refresh`, which
    runs the queries at most every `max_age` seconds (one refresh at a time, bounded by a timeout);
    a scrape in between, or one whose refresh failed, is answered from the last values."""

    def __init__(self, metrics: Sequence[DatabaseMetric], *, registry: CollectorRegistry | None = REGISTRY):
        self.metrics = tuple(metrics)
        self.values: dict[str, Samples] = {metric.name: [] for metric in self.metrics}
        self.refreshed_at: float | None = None
        self._lock = asyncio.Lock()
        if registry is not None:
            registry.register(self)

    async def refresh(self, database: Database, *, max_age: float) -> None:
        if self._fresh(max_age):
            return
        async with self._lock:
            if self._fresh(max_age):
                return
            try:
                async with asyncio.timeout(DATABASE_METRICS_TIMEOUT_S), database.read() as connection:
                    values = {metric.name: await metric.query(connection) for metric in self.metrics}
            except Exception:
                log.warning("business metrics not refreshed; serving the last values", exc_info=True)
                return
            self.values = values
            self.refreshed_at = time.monotonic()

    def _fresh(self, max_age: float) -> bool:
        return self.refreshed_at is not None and time.monotonic() - self.refreshed_at < max_age

    def describe(self) -> Iterator[Metric]:
        return self._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        for metric in self.metrics:
            family_class = CounterMetricFamily if metric.kind == "counter" else GaugeMetricFamily
            family = family_class(metric.name, metric.documentation, labels=list(metric.labels))
            if with_samples:
                for labels, value in self.values.get(metric.name, []):
                    family.add_metric(list(labels), value)
            yield family


_PENDING_INCREMENTS = "servicekit_metrics_on_commit"


def increment_on_commit(
    session: AsyncSession | Session | lean.Transaction, counter: Counter, amount: float = 1.0
) -> None:
    """Add `amount` to `counter` (a labelled child) when the session's transaction commits, and never if
    it rolls back: a counter of orders counts the orders that exist. A lean transaction likewise."""
    info = session.sync_session.info if isinstance(session, AsyncSession) else session.info
    info.setdefault(_PENDING_INCREMENTS, []).append((counter, amount))


@event.listens_for(Session, "after_commit")
@lean.on_commit
def _apply_increments(session: Session | lean.Transaction) -> None:
    for counter, amount in session.info.pop(_PENDING_INCREMENTS, []):
        counter.inc(amount)


@event.listens_for(Session, "after_rollback")
def _drop_increments(session: Session) -> None:
    session.info.pop(_PENDING_INCREMENTS, None)
