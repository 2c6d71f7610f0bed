"""/metrics carries today's KPIs and the tracking counters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from analytics_support import Deliverer, placed, tracked, unique
from conftest import settings_for
from prometheus_client.parser import text_string_to_metric_families

from analytics_service.main import create_app
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer, running_app


@pytest.fixture
async def fresh_metrics(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(database_url, kafka_bootstrap, consumers=False, metrics_refresh_seconds=0))
    async with running_app(app, token_issuer) as http:
        yield http


def _samples(text: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("analytics_")
    }


async def test_todays_orders_revenue_and_conversion_and_the_track_counters(
    fresh_metrics: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    now = datetime.now(UTC)
    session_id, customer, order_id = unique("s"), unique("c"), unique("o")
    await Deliverer(database)(
        [
            tracked("Page Viewed", session=session_id, when=now, customer=customer),
            tracked("Order Completed", session=session_id, when=now, customer=customer, order_id=order_id),
            placed(order_id, customer, now, [("SKU-T", 1, "42.00")]),
        ]
    )
    before = _samples((await fresh_metrics.get("/metrics")).text)
    batch = [{"message_id": unique("m"), "event": "Nope", "timestamp": now.isoformat(), "session_id": "s"}]
    await fresh_metrics.post(
        "/v1/track", json={"batch": batch}, headers=token_issuer.auth_header("events:write")
    )
    after = _samples((await fresh_metrics.get("/metrics")).text)
    assert after["analytics_orders_today"] >= 1
    assert after["analytics_revenue_today"] >= 42.0
    assert 0 < after["analytics_conversion_rate_today"] <= 1
    assert after["analytics_events_rejected_total"] == before.get("analytics_events_rejected_total", 0) + 1
    assert "analytics_events_ingested_total" in after or any(
        k.startswith("analytics_events_ingested") for k in after
    )
