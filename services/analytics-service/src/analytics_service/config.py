"""Analytics service settings: environment variables with the ANALYTICS_ prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"
DEFAULT_PORT = 8004


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_")

    service_name: str = "analytics-service"
    database_url: str = "sqlite+aiosqlite:///./var/analytics.db"
    database_sqlite_cache_kib: int | None = Field(
        default=32768,
        ge=1,
        description="Each SQLite connection's page cache, KiB (at most that much memory a connection, "
        "allocated as pages are read). The activity fold inserts every event into four random-keyed "
        "B-trees (message, session, anonymous ids, the inbox); with SQLite's default 2,000 KiB their pages "
        "are read back from the file again and again (bench/analytics)",
    )

    reporting_currency: str = Field(
        default="EUR",
        min_length=3,
        max_length=3,
        description="Currency of the money KPIs: only orders, spend and expenses in it are counted",
    )
    consent_mode: Literal["strip", "drop"] = Field(
        default="strip",
        description="What happens to events of a customer who withdrew analytics consent: `strip` keeps "
        "them without customer and anonymous ids (they still count in sessions and the funnel), `drop` "
        "discards them",
    )
    track_max_batch: int = Field(default=500, ge=1, le=500, description="Events per POST /v1/track")
    track_max_future_seconds: int = Field(
        default=300, ge=0, description="How far ahead of the server's clock an event's timestamp may be"
    )
    track_max_age_days: int = Field(
        default=400, ge=1, description="How old an event's timestamp may be (older ones are refused)"
    )
    track_max_properties_bytes: int = Field(
        default=8192, ge=256, description="Largest serialized `properties` object of one event"
    )
    kpi_max_range_days: int = Field(
        default=731, ge=1, description="Longest date range a KPI, funnel or cohort query may cover"
    )

    model_refit_interval_s: int = Field(
        default=0,
        ge=0,
        description="Seconds between scheduled refits of forecasts, recommendations and CLV (0, the "
        "default: only POST /v1/models/refit); the first runs at start-up when no fit is younger than this",
    )
    model_refit_empty_retry_s: int = Field(
        default=900,
        ge=10,
        description="With the schedule on, how soon a fit that found no sales and no customers (a fresh "
        "start before the consumers caught up) is tried again",
    )
    model_refit_stale_s: int = Field(
        default=1800, ge=60, description="A refit without a heartbeat for this long is taken as dead"
    )
    forecast_history_days: int = Field(default=365, ge=28, le=1100, description="Days of sales a fit uses")
    forecast_horizon_days: int = Field(default=63, ge=7, le=366, description="Days forecast and stored")
    forecast_interval_level: float = Field(
        default=0.8, gt=0.0, lt=1.0, description="Coverage of the daily prediction interval"
    )
    reorder_service_level: float = Field(
        default=0.95, gt=0.5, lt=1.0, description="Probability of not running out before a reorder arrives"
    )
    reorder_review_days: int = Field(default=7, ge=1, le=90, description="Days between reorder reviews")
    default_lead_time_days: int = Field(
        default=14, ge=0, le=3650, description="Lead time of a SKU without a supplier offer"
    )
    product_service_url: str = Field(
        default="http://127.0.0.1:8002",
        description="product-service, asked for supplier offers (lead times, MOQs) with the caller's token",
    )
    recommendation_neighbours: int = Field(default=50, ge=1, le=500, description="Neighbours kept per SKU")
    clv_horizon_days: int = Field(default=365, ge=7, le=3650, description="Horizon of predicted CLV")
