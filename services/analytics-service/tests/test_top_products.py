"""GET /v1/top-products against a hand-computed fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
from analytics_support import Deliverer, placed, price, product, status, tracked

from analytics_service.config import Settings
from analytics_service.main import create_app
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer, running_app


def t(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 4, day, hour, tzinfo=UTC)


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http(database_url: str, token_issuer: TestTokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=database_url, kafka_enabled=False, log_json=False))
    async with running_app(app, token_issuer, signed_in=("analytics:read",)) as client:
        database = Database(database_url)
        try:
            deliver = Deliverer(database)
            await deliver([product(sku, "shoes") for sku in ("A", "B", "C", "D")])
            await deliver([price(sku, "10.00", "4.00", t(1)) for sku in ("A", "B", "C", "D")])
            await deliver(
                [
                    tracked("Product Viewed", session="s1", when=t(2), anonymous="a1", sku="C"),
                    tracked("Product Viewed", session="s2", when=t(3), anonymous="a2", sku="C"),
                    tracked("Product Viewed", session="s3", when=t(3), anonymous="a3", sku="A"),
                ]
            )
            await deliver(
                [
                    placed("o1", "c1", t(2), [("A", 1, "100.00"), ("B", 5, "10.00")]),
                    placed("o2", "c2", t(4), [("A", 1, "100.00"), ("C", 2, "30.00")]),
                    placed("o3", "c3", t(5), [("B", 1, "10.00")]),
                    # cancelled: not counted; outside the range: not counted
                    placed("o4", "c4", t(5), [("D", 50, "10.00")]),
                    status("o4", "c4", "cancelled", t(5, 12)),
                    placed("o5", "c5", t(20), [("D", 9, "10.00")]),
                ]
            )
        finally:
            await database.dispose()
        yield client


async def test_products_ranked_by_revenue(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/top-products", params={"start": "2026-04-01", "end": "2026-04-10"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert [(i["sku"], i["units"], i["orders"], i["revenue"], i["views"]) for i in body["items"]] == [
        ("A", 2, 2, 200.0, 1),
        ("B", 6, 2, 60.0, 0),
        ("C", 2, 1, 60.0, 2),
    ]
    assert (body["skus_sold"], body["revenue_total"], body["currency"]) == (3, 320.0, "EUR")


async def test_products_ranked_by_units_with_a_limit(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/v1/top-products", params={"start": "2026-04-01", "end": "2026-04-30", "by": "units", "limit": 2}
    )

    body = response.json()
    assert [(i["sku"], i["units"]) for i in body["items"]] == [("D", 9), ("B", 6)]
    assert (body["skus_sold"], body["revenue_total"]) == (4, 410.0)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-04-10", "end": "2026-04-01"},
        {"start": "2020-01-01", "end": "2026-04-01"},
        {"start": "2026-04-01", "end": "2026-04-10", "limit": 0},
        {"start": "2026-04-01", "end": "2026-04-10", "by": "margin"},
        {"start": "yesterday", "end": "2026-04-10"},
    ],
)
async def test_bad_queries_are_422(http: httpx.AsyncClient, params: dict[str, object]) -> None:
    response = await http.get("/v1/top-products", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
