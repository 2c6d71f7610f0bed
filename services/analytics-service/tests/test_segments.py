"""RFM scores and segments, custom rule segments, consent in members and exports, counts over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from analytics_support import Deliverer, consent, placed, product
from sqlalchemy import delete

from analytics_service.clv.models import PredictedClv
from analytics_service.warehouse.models import OrderFact
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer

AS_OF = datetime(2026, 10, 1, 12, tzinfo=UTC)
# customer: (orders, days before AS_OF of the last one, amount of each order)
CUSTOMERS = {
    "c_champ": (8, 1, "100.00"),
    "c_new": (1, 2, "60.00"),
    "c_loyal": (6, 30, "5.00"),
    "c_f1": (2, 100, "10.00"),
    "c_f2": (2, 110, "10.00"),
    "c_f3": (2, 120, "10.00"),
    "c_f4": (2, 130, "10.00"),
    "c_risk": (5, 300, "40.00"),
    "c_hib2": (1, 380, "30.00"),
    "c_hib1": (1, 400, "30.00"),
    "c_private": (3, 5, "500.00"),
}
EXPECTED = {
    "new": ["c_new"],
    "champions": ["c_champ"],
    "loyal": ["c_loyal"],
    "at_risk": ["c_risk"],
    "hibernating": ["c_f4", "c_hib1", "c_hib2"],
    "need_attention": ["c_f1", "c_f2", "c_f3"],
}


@pytest.fixture
async def seeded(database: Database, client: httpx.AsyncClient) -> httpx.AsyncClient:
    async with database.session() as session:
        done = await session.get(OrderFact, "c_champ-0")
    if done is None:
        deliver = Deliverer(database)
        await deliver([product("SOCK", "socks"), product("SHOE", "shoes")])
        events = []
        for customer, (count, days, amount) in CUSTOMERS.items():
            for n in range(count):
                when = AS_OF - timedelta(days=days + 7 * n)
                sku = "SOCK" if customer in ("c_f1", "c_loyal") else "SHOE"
                events.append(placed(f"{customer}-{n}", customer, when, [(sku, 1, amount)]))
        await deliver(events)
        await deliver(
            [
                consent("c_private", "analytics", "withdrawn", AS_OF - timedelta(days=1)),
                consent("c_private", "email_marketing", "granted", AS_OF - timedelta(days=1)),
                consent("c_f1", "email_marketing", "granted", AS_OF - timedelta(days=1)),
                consent("c_champ", "email_marketing", "granted", AS_OF - timedelta(days=1)),
                consent("c_f2", "email_marketing", "withdrawn", AS_OF - timedelta(days=1)),
            ]
        )
    return client


async def _members(client: httpx.AsyncClient, tokens: TestTokenIssuer, name: str, **params: str) -> list[str]:
    response = await client.get(
        f"/v1/segments/{name}/members",
        params={"as_of": AS_OF.date().isoformat(), **params},
        headers=tokens.auth_header("analytics:read"),
    )
    assert response.status_code == 200, response.text
    return [m["customer_id"] for m in response.json()["items"]]


async def test_rfm_segments_by_hand(seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    got = {name: await _members(seeded, token_issuer, name) for name in EXPECTED}
    assert got == EXPECTED


async def test_members_for_a_purpose_are_only_customers_who_granted_it(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    assert await _members(seeded, token_issuer, "need_attention", purpose="email_marketing") == ["c_f1"]
    response = await seeded.get(
        "/v1/segments/champions/export",
        params={"purpose": "email_marketing", "as_of": AS_OF.date().isoformat()},
        headers=token_issuer.auth_header("analytics:read"),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0] == "customer_id,recency_days,frequency,monetary,r,f,m,rfm_segment"
    assert lines[1:] == ["c_champ,1,8,800.00,5,5,5,champions"]


async def test_a_customer_who_withdrew_analytics_consent_is_in_no_segment(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    writer = token_issuer.auth_header("analytics:write")
    created = await seeded.post(
        "/v1/segments", json={"name": "everyone", "rules": {"frequency_min": 1}}, headers=writer
    )
    assert created.status_code in (201, 409)
    members = await _members(seeded, token_issuer, "everyone")
    assert "c_private" not in members
    assert len(members) == len(CUSTOMERS) - 1


async def test_custom_segment_by_rules(seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    rules = {"frequency_min": 2, "recency_days_max": 200, "categories": ["socks"], "monetary_max": 100}
    response = await seeded.post(
        "/v1/segments",
        json={"name": "sock-regulars", "description": "bought socks", "rules": rules},
        headers=token_issuer.auth_header("analytics:write"),
    )
    assert response.status_code == 201, response.text
    assert await _members(seeded, token_issuer, "sock-regulars") == ["c_f1", "c_loyal"]
    assert await _members(seeded, token_issuer, "sock-regulars", purpose="email_marketing") == ["c_f1"]
    again = await seeded.post(
        "/v1/segments",
        json={"name": "sock-regulars", "rules": rules},
        headers=token_issuer.auth_header("analytics:write"),
    )
    assert again.status_code == 409
    listed = await seeded.get("/v1/segments", headers=token_issuer.auth_header("analytics:read"))
    assert {s["name"] for s in listed.json()} >= {*EXPECTED, "sock-regulars"}


async def test_a_channel_rule_matches_whatever_its_letter_case(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """Acquisition channels are stored lower-cased; a rule on `Web` matched no customer."""
    response = await seeded.post(
        "/v1/segments",
        json={"name": "web-sock-buyers", "rules": {"channels": [" Web "], "categories": ["socks"]}},
        headers=token_issuer.auth_header("analytics:write"),
    )

    assert response.status_code == 201, response.text
    assert response.json()["rules"]["channels"] == ["web"]
    assert await _members(seeded, token_issuer, "web-sock-buyers") == ["c_f1", "c_loyal"]


async def _predict(database: Database, spend_minor: dict[str, int]) -> None:
    """The latest fit's predicted spend of these customers, and of no other."""
    async with database.session() as session:
        await session.execute(delete(PredictedClv))
        for customer_id, spend in spend_minor.items():
            session.add(
                PredictedClv(
                    customer_id=customer_id,
                    run_id="test-run",
                    horizon_days=365,
                    expected_purchases=1.0,
                    probability_alive=0.9,
                    predicted_spend_minor=spend,
                    fitted_at=AS_OF,
                    monetary=0.0,
                    r=1,
                    f=1,
                    m=1,
                    rfm_segment="loyal",
                )
            )


async def test_custom_segment_on_predicted_clv_takes_the_latest_fit(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    await _predict(database, {"c_champ": 900_00, "c_loyal": 250_00, "c_f1": 40_00, "c_private": 5000_00})
    writer = token_issuer.auth_header("analytics:write")
    response = await seeded.post(
        "/v1/segments",
        json={"name": "predicted-valuable", "rules": {"predicted_clv_min": 100, "predicted_clv_max": 1000}},
        headers=writer,
    )
    assert response.status_code in (201, 409), response.text
    # c_private is above the range and withdrew analytics consent; customers without a prediction never match.
    assert await _members(seeded, token_issuer, "predicted-valuable") == ["c_champ", "c_loyal"]
    refused = await seeded.post(
        "/v1/segments", json={"name": "bad-clv", "rules": {"predicted_clv_min": -1}}, headers=writer
    )
    assert refused.status_code == 422


@pytest.mark.parametrize(
    "rules",
    [
        {"recency_days_min": 30, "recency_days_max": 7},
        {"frequency_min": 3, "monetary_min": 500, "monetary_max": 100},
        {"predicted_clv_min": 1000, "predicted_clv_max": 100},
    ],
)
async def test_a_segment_with_an_inverted_range_is_refused(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, rules: dict[str, float]
) -> None:
    """A min above its max used to be stored (201) as a segment no customer can ever be in."""
    name = f"inverted-{len(rules)}-{next(iter(rules))[:6]}".replace("_", "-")
    response = await client.post(
        "/v1/segments",
        json={"name": name, "rules": rules},
        headers=token_issuer.auth_header("analytics:write"),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "is above" in response.json()["errors"][0]["message"]
    listed = await client.get("/v1/segments", headers=token_issuer.auth_header("analytics:read"))
    assert name not in {s["name"] for s in listed.json()}


async def test_segment_counts_over_time(seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await seeded.get(
        "/v1/segments/hibernating/counts",
        params={"start": "2026-08-01", "end": "2026-10-01", "granularity": "month"},
        headers=token_issuer.auth_header("analytics:read"),
    )
    assert response.status_code == 200
    points = response.json()
    assert [p["as_of"] for p in points] == ["2026-08-31", "2026-09-30", "2026-10-01"]
    assert points[-1]["members"] == 3


@pytest.mark.parametrize(
    ("path", "status_code"),
    [
        ("/v1/segments/nobody/members", 404),
        ("/v1/segments/nobody/export?purpose=sms", 404),
        ("/v1/segments/champions/export?purpose=telepathy", 422),
        ("/v1/segments/champions/counts?start=2026-10-01&end=2026-01-01", 422),
    ],
)
async def test_unknown_segments_and_bad_parameters_are_problems(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, path: str, status_code: int
) -> None:
    response = await client.get(path, headers=token_issuer.auth_header("analytics:read"))
    assert response.status_code == status_code
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_list_counts_each_segment_as_its_members_list_does(
    seeded: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    """The list reads every customer's metrics once for all the segments: each count is the length of the
    segment's members list of the same day, whatever its rules read (consent, categories, predicted CLV)."""
    await _predict(database, {"c_champ": 900_00, "c_f1": 40_00})
    writer = token_issuer.auth_header("analytics:write")
    for name, rules in {
        "list-mailable": {"consent": ["email_marketing"]},
        "list-socks": {"categories": ["socks"]},
        "list-clv": {"predicted_clv_min": 100},
        "list-shoes-mailable": {"categories": ["shoes"], "consent": ["email_marketing"]},
    }.items():
        response = await seeded.post("/v1/segments", json={"name": name, "rules": rules}, headers=writer)
        assert response.status_code in (201, 409), response.text
    today = datetime.now(UTC).date().isoformat()

    listed = await seeded.get("/v1/segments", headers=token_issuer.auth_header("analytics:read"))

    assert listed.status_code == 200, listed.text
    counts = {s["name"]: s["members"] for s in listed.json()}
    for name in (*EXPECTED, "list-mailable", "list-socks", "list-clv", "list-shoes-mailable"):
        assert counts[name] == len(await _members(seeded, token_issuer, name, as_of=today)), name
    assert counts["list-clv"] == 1
    assert counts["list-socks"] == 2
    assert counts["list-mailable"] == 2  # c_f1 and c_champ; c_private withdrew analytics consent
