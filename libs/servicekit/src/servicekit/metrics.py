"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration in seconds",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published")
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published", ["topic"])
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
