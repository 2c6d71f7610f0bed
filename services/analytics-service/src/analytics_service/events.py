"""The events analytics-service consumes: one table from consumer name to its handlers."""

from __future__ import annotations

from servicekit.events import ConsumerSpec

CONSUMERS: list[ConsumerSpec] = []
