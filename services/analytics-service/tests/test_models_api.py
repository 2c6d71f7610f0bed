"""Forecasts, reorder suggestions, recommendations and predicted CLV through the API, on a shop history
delivered to the real consumer handlers and a refit run through POST /v1/models/refit."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta

import httpx
import pytest
import pytest_asyncio
from analytics_support import Deliverer, consent, merged, placed, product, tracked, unique
from models_support import NOW, SupplierServer, ago, offer, stock
from sqlalchemy import select
from sqlmodel import col

from analytics_service.clv.models import PredictedClv
from analytics_service.config import Settings
from analytics_service.fitting import service as fitting
from analytics_service.main import create_app
from analytics_service.warehouse.models import CustomerProfile
from servicekit.db import Database
from servicekit.errors import Conflict
from servicekit.testing import TestTokenIssuer, running_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

READ = ("analytics:read",)
TENT, PEGS, LAMP, STOVE, GAS, HIDDEN, GONE, SLOW, NEVER = (
    "TENT",
    "PEGS",
    "LAMP",
    "STOVE",
    "GAS",
    "HIDDEN",
    "GONE",
    "SLOW",
    "NEVER-SOLD",
)


async def shop_history(database: Database) -> None:
    """Forty customers over 40 days: tent buyers buy pegs (and some the hidden and the sold-out SKU),
    stove buyers buy gas; lamps sell every day at two locations; SLOW sells on a few days."""
    deliver = Deliverer(database)
    await deliver([product(sku, "outdoor") for sku in (TENT, PEGS, LAMP, STOVE, GAS, GONE, SLOW, NEVER)])
    await deliver([product(HIDDEN, "outdoor", status="draft")])
    rng = random.Random(4)
    events = []
    for index in range(40):
        customer = f"cust{index}"
        when = ago(rng.uniform(25, 40))
        basket = (
            [(TENT, 1, "99.00"), (PEGS, 2, "5.00"), (HIDDEN, 1, "3.00"), (GONE, 1, "4.00")]
            if index % 2
            else [
                (STOVE, 1, "40.00"),
                (GAS, 3, "6.00"),
            ]
        )
        events.append(placed(unique("o"), customer, when, basket))
        if index % 3 == 0:  # repeat buyers, for the CLV model
            events.append(
                placed(unique("o"), customer, when + timedelta(days=rng.uniform(3, 20)), [(LAMP, 1, "15.00")])
            )
    for day in range(1, 43):
        for location in ("north", "south"):
            events.append(
                placed(
                    unique("o"),
                    f"walkin{day % 7}",
                    ago(day),
                    [(LAMP, 2 + day % 7 // 5, "15.00")],
                    location=location,
                )
            )
        if day % 17 == 0:
            events.append(placed(unique("o"), "slowbuyer", ago(day), [(SLOW, 3, "10.00")], location="north"))
    await deliver(events)
    await deliver(
        [
            stock(TENT, {"north": 5, "south": 0}),
            stock(PEGS, {"north": 100}),
            stock(LAMP, {"north": 3, "south": 2}),
            stock(STOVE, {"north": 50}),
            stock(GAS, {"north": 80}),
            stock(GONE, {"north": 0}),
            stock(SLOW, {"north": 40}),
        ]
    )
    await deliver([consent("cust1", "personalisation", "withdrawn", ago(1))])
    await deliver([tracked("Product Viewed", session=unique("s"), when=ago(1), customer="viewer", sku=STOVE)])


@pytest.fixture(scope="module")
def suppliers() -> Iterator[tuple[SupplierServer, str]]:
    server = SupplierServer({"acme": [offer("acme", LAMP, 10, 50)], "zeta": [offer("zeta", LAMP, 21, 1)]})
    with server.serving() as url:
        yield server, url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_client(
    database_url: str, suppliers: tuple[SupplierServer, str], token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(database_url)
    await shop_history(database)
    await database.dispose()
    settings = Settings(
        database_url=database_url,
        kafka_enabled=False,
        model_refit_interval_s=0,
        product_service_url=suppliers[1],
    )
    async with running_app(create_app(settings), token_issuer, wait_for_kafka=False, signed_in=READ) as http:
        response = await http.post("/v1/models/refit", headers=token_issuer.auth_header("admin"))
        assert response.status_code == 202, response.text
        yield http


async def test_refit_is_visible_with_its_date_and_counts(app_client: httpx.AsyncClient) -> None:
    body = (await app_client.get("/v1/models")).json()
    fitted = body["fitted"]
    assert fitted["status"] == "succeeded"
    assert fitted["trigger"] == "api"
    assert fitted["data_until"] == (NOW - timedelta(days=1)).date().isoformat()
    assert fitted["summary"]["forecasts"]["series"] >= 4
    assert fitted["summary"]["clv"]["customers"] >= 40
    assert body["refit_interval_s"] == 0


async def test_forecast_of_all_locations_has_interval_and_days_of_cover(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.get(f"/v1/forecasts/{LAMP}", params={"days": 14})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["location_id"] == "*"
    assert body["method"] == "weekly_ses"
    assert len(body["days"]) == 14
    assert body["days"][0]["day"] == NOW.date().isoformat()
    assert all(d["lower"] <= d["mean"] <= d["upper"] for d in body["days"])
    assert 4 <= body["daily_rate"] <= 6
    assert body["available"] == 5
    assert 0.5 < body["days_of_cover"] < 2


async def test_forecast_of_one_location(app_client: httpx.AsyncClient) -> None:
    body = (await app_client.get(f"/v1/forecasts/{LAMP}", params={"location": "south"})).json()
    assert body["location_id"] == "south"
    assert 2 <= body["daily_rate"] <= 3
    assert body["available"] == 2


async def test_intermittent_sku_gets_tsb(app_client: httpx.AsyncClient) -> None:
    body = (await app_client.get(f"/v1/forecasts/{SLOW}")).json()
    assert body["method"] == "tsb"
    assert body["days_of_cover"] > 28


async def test_known_sku_without_sales_forecasts_zero(app_client: httpx.AsyncClient) -> None:
    body = (await app_client.get(f"/v1/forecasts/{NEVER}")).json()
    assert body["method"] == "no_sales"
    assert {d["mean"] for d in body["days"]} == {0.0}
    assert body["days_of_cover"] is None


async def test_unknown_sku_forecast_is_404_problem(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/v1/forecasts/NO-SUCH-SKU")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "NO-SUCH-SKU" in response.json()["detail"]


async def test_out_of_range_days_is_422(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get(f"/v1/forecasts/{LAMP}", params={"days": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_reorder_uses_the_supplier_with_the_shortest_lead_time_and_its_moq(
    app_client: httpx.AsyncClient, suppliers: tuple[SupplierServer, str]
) -> None:
    server, _ = suppliers
    server.authorizations.clear()
    body = (await app_client.get("/v1/reorder-suggestions")).json()
    lamp = next(item for item in body["items"] if item["sku"] == LAMP)
    assert lamp["supply_terms"] == "supplier"
    assert lamp["supplier_id"] == "acme"
    assert lamp["lead_time_days"] == 10
    assert lamp["quantity"] >= 50
    assert lamp["stockout_before_arrival"]
    assert body["items"][0]["stockout_before_arrival"]
    assert body["warnings"] == [] or all("stock record" in w for w in body["warnings"])
    assert server.authorizations
    assert all(a and a.startswith("Bearer ") for a in server.authorizations)


async def test_reorder_skips_skus_well_stocked(app_client: httpx.AsyncClient) -> None:
    body = (await app_client.get("/v1/reorder-suggestions")).json()
    assert SLOW not in {item["sku"] for item in body["items"]}


async def test_reorder_falls_back_to_default_lead_time_when_product_service_refuses(
    app_client: httpx.AsyncClient, suppliers: tuple[SupplierServer, str]
) -> None:
    server, _ = suppliers
    server.refuse = True
    try:
        body = (await app_client.get("/v1/reorder-suggestions")).json()
    finally:
        server.refuse = False
    lamp = next(item for item in body["items"] if item["sku"] == LAMP)
    assert lamp["supply_terms"] == "default"
    assert lamp["lead_time_days"] == 14
    assert any("403" in warning for warning in body["warnings"])


async def test_bought_together_names_the_pair_and_skips_unpublished_and_sold_out(
    app_client: httpx.AsyncClient,
) -> None:
    body = (await app_client.get(f"/v1/recommendations/products/{TENT}")).json()
    skus = [item["sku"] for item in body["items"]]
    assert skus[0] == PEGS
    assert body["items"][0]["reason"] == f"bought with {TENT} by 20 customers"
    assert HIDDEN not in skus
    assert GONE not in skus


async def test_bought_together_of_unknown_sku_is_404(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/v1/recommendations/products/NO-SUCH-SKU")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_personal_recommendations_exclude_bought_and_explain(app_client: httpx.AsyncClient) -> None:
    body = (await app_client.get("/v1/recommendations/customers/cust8")).json()  # bought stove and gas
    skus = [item["sku"] for item in body["items"]]
    assert body["personalised"] is True
    assert not {STOVE, GAS, HIDDEN, GONE} & set(skus)
    assert skus[0] == LAMP
    assert body["items"][0]["reason"].startswith("you bought")


async def test_views_lead_to_recommendations(app_client: httpx.AsyncClient, database_url: str) -> None:
    database = Database(database_url)
    try:
        await Deliverer(database)([placed(unique("o"), "viewer", ago(300), [(LAMP, 1, "15.00")])])
    finally:
        await database.dispose()
    body = (await app_client.get("/v1/recommendations/customers/viewer")).json()
    assert body["items"][0]["sku"] == GAS
    assert body["items"][0]["reason"].startswith(f"you viewed {STOVE}")


async def test_withdrawn_personalisation_consent_gets_bestsellers_only(app_client: httpx.AsyncClient) -> None:
    body = (await app_client.get("/v1/recommendations/customers/cust1")).json()
    assert body["personalised"] is False
    assert "consent" in body["note"]
    assert all(item["reason"].startswith("popular") for item in body["items"])


async def test_merged_customer_gets_the_survivors_recommendations(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    database = Database(database_url)
    try:
        await Deliverer(database)([merged("cust2", ["cust4"], unique("merge"), ago(0.5))])
    finally:
        await database.dispose()
    survivor = (await app_client.get("/v1/recommendations/customers/cust2")).json()
    merged_away = (await app_client.get("/v1/recommendations/customers/cust4")).json()
    assert merged_away == survivor


async def test_unknown_customer_is_404(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/v1/recommendations/customers/nobody")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_predicted_clv_of_a_customer(app_client: httpx.AsyncClient) -> None:
    repeat = (await app_client.get("/v1/clv/customers/cust3")).json()
    once = (await app_client.get("/v1/clv/customers/cust5")).json()
    assert repeat["orders"] == 2
    assert repeat["predicted_spend_minor"] > 0
    assert repeat["horizon_days"] == 365
    assert 0 < repeat["probability_alive"] <= 1
    assert repeat["expected_purchases"] > once["expected_purchases"]
    assert (await app_client.get("/v1/clv/customers/nobody")).status_code == 404


async def test_refit_needs_admin_scope(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/v1/models/refit")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_concurrent_refits_one_wins_the_lock(database_url: str) -> None:
    database = Database(database_url)
    try:
        results = await asyncio.gather(
            *(fitting.start_run(database, trigger="api", actor=f"a{i}", stale_after_s=600) for i in range(6)),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
        settings = Settings(database_url=database_url, kafka_enabled=False, model_refit_interval_s=0)
        await fitting.run_refit(database, settings, run_id=winners[0].id)
        assert (await fitting.latest_run(database)).status == "succeeded"  # type: ignore[union-attr]
    finally:
        await database.dispose()


async def test_refit_while_one_runs_is_409(
    app_client: httpx.AsyncClient, database_url: str, token_issuer: TestTokenIssuer
) -> None:
    database = Database(database_url)
    try:
        run = await fitting.start_run(database, trigger="api", actor="holder", stale_after_s=600)
        response = await app_client.post("/v1/models/refit", headers=token_issuer.auth_header("admin"))
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        await fitting.run_refit(
            database, Settings(database_url=database_url, kafka_enabled=False), run_id=run.id
        )
    finally:
        await database.dispose()


async def test_predicted_clv_kpi_is_the_mean_prediction_of_known_unmerged_customers(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    today = NOW.date()
    response = await app_client.get(
        "/v1/kpis", params={"start": (today - timedelta(days=30)).isoformat(), "end": today.isoformat()}
    )
    assert response.status_code == 200, response.text
    database = Database(database_url)
    try:
        async with database.session() as session:
            rows = (
                (
                    await session.execute(
                        select(col(PredictedClv.predicted_spend_minor))
                        .join(
                            CustomerProfile, col(CustomerProfile.customer_id) == col(PredictedClv.customer_id)
                        )
                        .where(
                            col(CustomerProfile.merged_into).is_(None),
                            col(CustomerProfile.first_order_at).is_not(None),
                        )
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await database.dispose()
    assert rows
    expected = round(sum(rows) / len(rows) / 100, 2)
    assert response.json()["kpis"]["predicted_clv"]["value"] == pytest.approx(expected, abs=0.01)


async def test_predicted_clv_kpi_of_a_past_period_and_a_channel_counts_the_customers_then_acquired(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    database = Database(database_url)
    try:
        for end in (ago(30).date(), NOW.date()):
            for channel in (None, "web", "pos"):
                params = {"start": (end - timedelta(days=6)).isoformat(), "end": end.isoformat()}
                response = await app_client.get(
                    "/v1/kpis", params={**params, **({"channel": channel} if channel else {})}
                )
                assert response.status_code == 200, response.text
                until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
                statement = (
                    select(col(PredictedClv.predicted_spend_minor))
                    .join(CustomerProfile, col(CustomerProfile.customer_id) == col(PredictedClv.customer_id))
                    .where(
                        col(CustomerProfile.merged_into).is_(None),
                        col(CustomerProfile.first_order_at) < until,
                    )
                )
                if channel is not None:
                    statement = statement.where(col(CustomerProfile.acquisition_channel) == channel)
                async with database.session() as session:
                    rows = (await session.execute(statement)).scalars().all()
                expected = round(sum(rows) / len(rows) / 100, 2) if rows else None
                assert response.json()["kpis"]["predicted_clv"]["value"] == pytest.approx(expected, abs=0.01)
    finally:
        await database.dispose()
