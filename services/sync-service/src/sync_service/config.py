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
DEV_SECRETS_KEY = "dev-only-sync-channel-secrets-key-change-me"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SYNC_")

    service_name: str = "sync-service"
    database_url: str = "sqlite+aiosqlite:///./var/sync.db"
    secrets_key: SecretStr = Field(
        default=SecretStr(DEV_SECRETS_KEY),
        description="Key (any long random string) that encrypts the channels' signing secrets at rest",
    )
