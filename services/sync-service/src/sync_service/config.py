"""Sync service settings: environment variables with the SYNC_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"
DEFAULT_PORT = 8003

# Development default: it carries the "dev-only" marker, so a production start refuses it.
DEV_SECRET_KEYS = "dev-only-1:ZGV2LW9ubHktc3luYy1zZWNyZXQta2V5LTAwMDAwMDA="


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SYNC_")

    service_name: str = "sync-service"
    database_url: str = "sqlite+aiosqlite:///./var/sync.db"

    secret_keys: SecretStr = Field(
        default=SecretStr(DEV_SECRET_KEYS),
        description="kid:base64(32-byte key) pairs, comma separated, that encrypt partners' signing "
        "secrets at rest; the first encrypts new secrets, the others still decrypt old ones",
    )
    late_sweep_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often the sweep looks for shipments past their promised delivery date",
    )
    late_sweep_enabled: bool = True
