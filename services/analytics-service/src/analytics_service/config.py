"""Analytics service settings: environment variables with the ANALYTICS_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"
DEFAULT_PORT = 8004


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_")

    service_name: str = "analytics-service"
    database_url: str = "sqlite+aiosqlite:///./var/analytics.db"
