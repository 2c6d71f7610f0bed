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
