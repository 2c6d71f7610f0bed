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
    push_enabled: bool = Field(default=True, description="Run the push pipeline in this process")
    push_timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="Timeout of one push")
    push_max_attempts: int = Field(default=4, ge=1, le=20, description="Tries of a push before it fails")
    push_backoff_seconds: float = Field(
        default=0.2, gt=0, le=60, description="First retry delay; doubled per retry, with ±50 % jitter"
    )
    push_backoff_max_seconds: float = Field(default=10.0, gt=0, le=600)
    push_concurrency: int = Field(default=4, ge=1, le=64, description="Pushes in flight per channel")
    push_batch_size: int = Field(default=50, ge=1, le=1000, description="Listings per push")
    push_coalesce_window_seconds: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="A SKU changed again within this many seconds of its last push is held and pushed once "
        "with its latest state (0: no holding)",
    )
    push_coalesce_quiet_seconds: float = Field(
        default=0.05,
        ge=0,
        le=60,
        description="A held SKU goes once it has not changed for this long and no newer event is waiting "
        "to be read (at the latest at the end of the window)",
    )
    push_sweep_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="How often pending listings not yet queued are picked up"
    )
    circuit_failure_threshold: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failed pushes that open a channel's circuit"
    )
    circuit_open_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="How long an open circuit waits before one trial push"
    )
    feed_link_base: str = Field(
        default="https://shop.example.com",
        max_length=500,
        description="Storefront base URL of feed items' links (<base>/products/<id>?sku=<sku>) when the feed "
        "channel has no endpoint of its own",
    )
    drift_check_seconds: float = Field(
        default=900.0,
        ge=0,
        le=86400,
        description="How often every enabled push channel's state is read and compared (0: only on demand)",
    )
    product_service_url: str | None = Field(
        default=None,
        max_length=500,
        description="product-service's base URL (e.g. http://product:8000): a full resync reads the "
        "catalogue from its API (GET /v1/channel-facts)",
    )
    token_url: str | None = Field(
        default=None,
        max_length=500,
        description="The gateway's OAuth2 token endpoint (e.g. http://gateway:8000/oauth/token) where "
        "sync-service gets its own access token (client_credentials grant)",
    )
    client_id: str | None = Field(
        default=None, max_length=200, description="sync-service's client at the gateway (role `sync`)"
    )
    client_secret: SecretStr | None = Field(default=None, description="That client's secret")
    product_service_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Timeout of one call to the gateway or product-service"
    )
    resync_pull_page_size: int = Field(
        default=100, ge=1, le=200, description="Products per page read from product-service in a full resync"
    )

    @property
    def product_service_configured(self) -> bool:
        """Whether a full resync can read the catalogue from product-service (URL and credential set)."""
        return bool(self.product_service_url and self.token_url and self.client_id and self.client_secret)
