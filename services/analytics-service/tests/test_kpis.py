"""Every KPI against a hand-computed fixture (one week, its previous week, two channels)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from analytics_support import Deliverer, placed, price, product, status, tracked

from analytics_service.warehouse.models import Expense, MarketingSpend
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer


def t(day: int, hour: int = 10, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


async def _fixture(database: Database) -> None:
    deliver = Deliverer(database)
    g = {"channel": "google", "campaign": "spring"}
    e = {"channel": "email"}
    await deliver([product("A", "shoes"), product("B", "socks")])
    await deliver([price("A", "50.00", "20.00", t(1, month=1)), price("B", "30.00", "10.00", t(1, month=1))])
    await deliver(
        [
            # previous week
            tracked("Product Viewed", session="s0", when=t(25, month=2), customer="c0", sku="A", **g),
            tracked("Product Added", session="s0", when=t(25, 11, month=2), customer="c0", sku="A", **g),
            tracked(
                "Order Completed", session="s0", when=t(25, 12, month=2), customer="c0", order_id="o0", **g
            ),
            # this week
            tracked("Page Viewed", session="s1", when=t(2), anonymous="a1", **g),
            tracked("Product Viewed", session="s1", when=t(2, 11), anonymous="a1", sku="A", **g),
            tracked("Product Added", session="s1", when=t(2, 12), anonymous="a1", sku="A", **g),
            tracked("Checkout Started", session="s1", when=t(2, 13), anonymous="a1", customer="c1", **g),
            tracked("Order Completed", session="s1", when=t(2, 14), customer="c1", order_id="o1", **g),
            tracked("Product Viewed", session="s2", when=t(3), anonymous="a2", sku="A", **g),
            tracked("Product Added", session="s2", when=t(3, 11), anonymous="a2", sku="A", **g),
            tracked("Page Viewed", session="s3", when=t(4), anonymous="a3", **g),
            tracked("Product Viewed", session="s4", when=t(5), customer="c2", sku="B", **e),
            tracked("Product Added", session="s4", when=t(5, 11), customer="c2", sku="B", **e),
            tracked("Checkout Started", session="s4", when=t(5, 12), customer="c2", **e),
            tracked("Order Completed", session="s4", when=t(5, 13), customer="c2", order_id="o2", **e),
            tracked("Product Added", session="s5", when=t(6), customer="c1", sku="B", **e),
            tracked("Order Completed", session="s5", when=t(6, 11), customer="c1", order_id="o3", **e),
        ]
    )
    await deliver(
        [
            placed("o0", "c0", t(25, 12, month=2), [("A", 1, "50.00")]),
            placed("o1", "c1", t(2, 14), [("A", 2, "50.00")], discount="10.00"),
            placed("o2", "c2", t(5, 13), [("B", 1, "30.00")]),
            placed("o3", "c1", t(6, 11), [("B", 1, "30.00")]),
            placed("o4", "c3", t(7), [("A", 1, "50.00")]),
            status("o4", "c3", "cancelled", t(7, 12)),
        ]
    )
    now = datetime.now(UTC)
    async with database.session() as session:
        for day, channel, campaign, amount in (
            (t(2), "google", "spring", 4000),
            (t(3), "google", "spring", 2000),
            (t(5), "email", "", 1500),
            (t(25, month=2), "google", "spring", 2500),
        ):
            session.add(
                MarketingSpend(
                    day=day.date(),
                    channel=channel,
                    campaign=campaign,
                    amount_minor=amount,
                    currency="EUR",
                    updated_at=now,
                )
            )
        session.add(
            Expense(
                id="rent", day=t(4).date(), category="rent", amount_minor=1000, currency="EUR", created_at=now
            )
        )


@pytest.fixture
async def seeded(database: Database, client: httpx.AsyncClient) -> httpx.AsyncClient:
    async with database.session() as session:
        already = await session.get(Expense, "rent")
    if already is None:
        await _fixture(database)
    return client


async def _kpis(client: httpx.AsyncClient, tokens: TestTokenIssuer, **params: Any) -> dict[str, Any]:
    response = await client.get(
        "/v1/kpis",
        params={"start": "2026-03-02", "end": "2026-03-08", **params},
        headers=tokens.auth_header("analytics:read"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_kpi_of_the_week_and_its_previous_week(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    body = await _kpis(seeded, token_issuer)
    values = {name: (kpi["value"], kpi["previous"]) for name, kpi in body["kpis"].items()}
    assert values == {
        "sessions": (5, 1),
        "conversion_rate": (0.6, 1.0),
        "cart_abandonment_rate": (0.25, 0.0),
        "orders": (3, 1),
        "revenue": (150.0, 50.0),
        "average_order_value": (50.0, 50.0),
        "new_customers": (2, 1),
        "returning_customer_orders": (1, 0),
        "repeat_purchase_rate": (0.5, 0.0),
        "marketing_spend": (75.0, 25.0),
        "customer_acquisition_cost": (37.5, 25.0),
        "historical_clv": (66.67, 50.0),
        "cost_of_goods": (60.0, 20.0),
        "expenses": (10.0, 0.0),
        "net_profit": (5.0, 5.0),
        "net_profit_margin": (0.033333, 0.1),
        "predicted_clv": (None, None),  # registered by the CLV model, not fitted in this module
    }
    assert body["kpis"]["sessions"]["change"] == 4
    assert body["kpis"]["sessions"]["change_ratio"] == 4.0
    assert (body["previous_start"], body["previous_end"]) == ("2026-02-23", "2026-03-01")
    assert len(body["series"]) == 7
    assert body["series"][0]["values"]["orders"] == 1
    assert body["series"][0]["values"]["revenue"] == 90.0


async def test_kpis_of_one_channel_leave_expenses_out(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    body = await _kpis(seeded, token_issuer, channel="google", granularity="week")
    values = {name: kpi["value"] for name, kpi in body["kpis"].items()}
    assert values["sessions"] == 3
    assert values["conversion_rate"] == 0.333333
    assert values["cart_abandonment_rate"] == 0.5
    assert (values["orders"], values["revenue"], values["new_customers"]) == (1, 90.0, 1)
    assert (values["marketing_spend"], values["customer_acquisition_cost"]) == (60.0, 60.0)
    assert (values["expenses"], values["net_profit"], values["net_profit_margin"]) == (0.0, -10.0, -0.111111)
    assert values["historical_clv"] == 70.0  # (50 + 90) attributed to google / 2 customers acquired there
    assert [(p["start"], p["end"], p["values"]["sessions"]) for p in body["series"]] == [
        ("2026-03-02", "2026-03-08", 3)
    ]


async def test_a_channel_filter_matches_whatever_its_letter_case(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """Channels are stored lower-cased (`utm_source=Google` is `google`), but the filter was compared as
    given: `channel=Google` found no session, order or spend."""
    as_stored = await _kpis(seeded, token_issuer, channel="google", granularity="week")
    as_typed = await _kpis(seeded, token_issuer, channel=" Google ", granularity="week")

    assert as_typed["kpis"] == as_stored["kpis"]
    assert as_typed["kpis"]["sessions"]["value"] == 3


async def test_kpis_export_as_csv(seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await seeded.get(
        "/v1/kpis",
        params={"start": "2026-03-02", "end": "2026-03-08", "granularity": "month", "format": "csv"},
        headers=token_issuer.auth_header("analytics:read"),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("period,start,end,sessions,conversion_rate")
    assert lines[1].startswith("period,2026-03-02,2026-03-08,5,0.6,0.25,3,150.0")
    assert lines[2].startswith("total,2026-03-02,2026-03-08,5,")
    assert lines[3].startswith("previous,2026-02-23,2026-03-01,1,")


@pytest.mark.parametrize(
    ("params", "status_code", "detail"),
    [
        ({"start": "2026-03-08", "end": "2026-03-02"}, 422, "inverted"),
        ({"start": "2020-01-01", "end": "2026-03-02"}, 422, "at most 731"),
        ({"start": "2026-03-02", "end": "2026-03-08", "granularity": "hour"}, 422, None),
        ({"start": "not-a-date", "end": "2026-03-08"}, 422, None),
        ({"start": "1200-01-01", "end": "2026-03-08"}, 422, None),
    ],
)
async def test_bad_kpi_ranges_are_clear_problems(
    client: httpx.AsyncClient,
    token_issuer: TestTokenIssuer,
    params: dict[str, str],
    status_code: int,
    detail: str | None,
) -> None:
    response = await client.get("/v1/kpis", params=params, headers=token_issuer.auth_header("analytics:read"))
    assert response.status_code == status_code
    assert response.headers["content-type"] == "application/problem+json"
    if detail is not None:
        assert detail in response.json()["detail"]


async def test_funnel_by_channel(seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await seeded.get(
        "/v1/funnel",
        params={"start": "2026-03-02", "end": "2026-03-08"},
        headers=token_issuer.auth_header("analytics:read"),
    )
    assert response.status_code == 200
    body = response.json()
    steps = {c["channel"]: [(s["step"], s["sessions"]) for s in c["steps"]] for c in body["channels"]}
    assert steps == {
        "email": [("sessions", 2), ("viewed", 1), ("added", 2), ("checkout", 1), ("purchased", 2)],
        "google": [("sessions", 3), ("viewed", 2), ("added", 2), ("checkout", 1), ("purchased", 1)],
    }
    total = body["total"]
    assert [s["sessions"] for s in total] == [5, 3, 4, 2, 3]
    assert total[1]["conversion_from_previous"] == 0.6
    assert total[1]["drop_off"] == 0.4


async def test_monthly_retention_cohorts(seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await seeded.get(
        "/v1/cohorts",
        params={"start": "2026-02-01", "end": "2026-03-31"},
        headers=token_issuer.auth_header("analytics:read"),
    )
    assert response.status_code == 200
    assert response.json()["cohorts"] == [
        {"cohort": "2026-02", "customers": 1, "retention": [1.0, 0.0]},
        {"cohort": "2026-03", "customers": 2, "retention": [1.0]},
    ]


async def test_top_products_and_a_products_daily_series(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    reader = token_issuer.auth_header("analytics:read")
    week = {"start": "2026-03-02", "end": "2026-03-08"}
    top = (await seeded.get("/v1/products/top", params={**week, "limit": 2}, headers=reader)).json()
    assert [(p["sku"], p["units"], p["revenue"], p["views"]) for p in top] == [
        ("A", 2, 100.0, 2),
        ("B", 2, 60.0, 1),
    ]
    series = (await seeded.get("/v1/products/A/daily", params=week, headers=reader)).json()
    assert series["category_id"] == "shoes"
    assert [(d["day"], d["views"], d["adds"], d["units"]) for d in series["days"][:2]] == [
        ("2026-03-02", 1, 1, 2),
        ("2026-03-03", 1, 1, 0),
    ]
    assert len(series["days"]) == 7
    unknown = await seeded.get("/v1/products/NOPE/daily", params=week, headers=reader)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
