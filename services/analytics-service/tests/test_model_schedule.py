"""Before any fit the model routes say so; the schedule fits at start-up, and sooner again when the
last fit found nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from analytics_support import Deliverer, product

from analytics_service.config import Settings
from analytics_service.fitting import service as fitting
from analytics_service.fitting.models import ModelRun
from analytics_service.main import create_app
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer, running_app


def settings_for(database_url: str, interval: int) -> Settings:
    return Settings(database_url=database_url, kafka_enabled=False, model_refit_interval_s=interval)


async def test_known_sku_before_any_fit_is_409_then_the_schedule_fits(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    database = Database(database_url)
    try:
        await Deliverer(database)([product("BOOT", "shoes")])
    finally:
        await database.dispose()
    app = create_app(settings_for(database_url, 0))
    async with running_app(app, token_issuer, wait_for_kafka=False, signed_in=("analytics:read",)) as http:
        response = await http.get("/v1/forecasts/BOOT")
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert (await http.get("/v1/reorder-suggestions")).status_code == 409
        assert (await http.get("/v1/models")).json()["fitted"] is None
    app = create_app(settings_for(database_url, 3600))
    async with running_app(app, token_issuer, wait_for_kafka=False, signed_in=("analytics:read",)) as http:
        for _ in range(200):
            fitted = (await http.get("/v1/models")).json()["fitted"]
            if fitted is not None:
                break
            await asyncio.sleep(0.05)
        assert fitted is not None
        assert fitted["trigger"] == "schedule"
        body = (await http.get("/v1/forecasts/BOOT")).json()
        assert body["method"] == "no_sales"


def run_with(summary: dict[str, object]) -> ModelRun:
    now = datetime.now(UTC)
    return ModelRun(
        id="r",
        status="succeeded",
        trigger="schedule",
        started_at=now,
        heartbeat_at=now,
        data_until=date.today(),
        summary=summary,
    )


def test_an_empty_fit_is_retried_within_15_minutes_and_a_full_one_after_the_interval() -> None:
    settings = Settings(model_refit_interval_s=86_400)
    assert (
        fitting._next_refit_after(run_with({"forecasts": {"series": 0}, "clv": {"customers": 0}}), settings)
        == 900
    )
    assert fitting._next_refit_after(run_with({"forecasts": {"series": 3}}), settings) == 86_400
    short = Settings(model_refit_interval_s=60)
    assert fitting._next_refit_after(run_with({}), short) == 60
