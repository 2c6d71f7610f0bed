"""Settings base: environment variables only, one prefix per service, shared Kafka settings."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_MARKER = "dev-only"


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set `env_prefix` (e.g. CUSTOMER_) and a service name.

    Kafka settings are shared by all services and read without a prefix.
    """

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore", populate_by_name=True)

    service_name: str = "service"
    environment: Literal["development", "test", "production"] = Field(
        default="development",
        validation_alias=AliasChoices("ENVIRONMENT", "ECOM_ENVIRONMENT"),
    )
    database_url: str = "sqlite+aiosqlite:///./var/service.db"
    database_pool_size: int = 10
    database_echo: bool = False
    database_sqlite_cache_kib: int | None = Field(default=None, ge=1)
    """Each SQLite connection's page cache in KiB (`PRAGMA cache_size`); None keeps SQLite's default
    (2,000 KiB). A service writing into large random-keyed indexes reads fewer pages back with more."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    """Largest request body (413 past it); file uploads have their own, larger limits."""
    log_level: str = "INFO"
    log_json: bool = True

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_enabled: bool = Field(default=True, validation_alias=AliasChoices("KAFKA_ENABLED"))
    kafka_consumers_enabled: bool = Field(
        default=True,
        validation_alias=AliasChoices("KAFKA_CONSUMERS_ENABLED"),
        description="False keeps the relay (events are published) but runs no consumers",
    )
    kafka_fetch_max_wait_ms: int = Field(default=20, validation_alias=AliasChoices("KAFKA_FETCH_MAX_WAIT_MS"))
    kafka_enable_idempotence: bool = Field(
        default=False, validation_alias=AliasChoices("KAFKA_ENABLE_IDEMPOTENCE")
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000, validation_alias=AliasChoices("KAFKA_SESSION_TIMEOUT_MS")
    )
    kafka_topic_partitions: int = Field(default=3, validation_alias=AliasChoices("KAFKA_TOPIC_PARTITIONS"))
    kafka_replication_factor: int = Field(
        default=1, validation_alias=AliasChoices("KAFKA_REPLICATION_FACTOR")
    )
    kafka_create_topics: bool = Field(default=True, validation_alias=AliasChoices("KAFKA_CREATE_TOPICS"))

    outbox_batch_size: int = 200
    # Business gauges computed from the database are recomputed at a scrape at most this often.
    metrics_refresh_seconds: float = 15.0
    outbox_poll_interval_ms: int = 50
    # Under load (two rounds in a row of at least relay.LINGER_AFTER rows) the relay lets the next round fill
    # this long before publishing it (0: never); a quieter service publishes each commit at once.
    outbox_linger_ms: int = Field(default=20, ge=0, le=1000)
    # Published outbox rows are deleted this long after publication (0 keeps them forever).
    outbox_retention_hours: float = Field(default=168.0, ge=0)
    consumer_max_retries: int = 3
    consumer_retry_backoff_ms: int = 100
    consumer_retry_backoff_max_ms: int = 5000

    jwks_url: str = "http://127.0.0.1:8000/.well-known/jwks.json"
    jwt_issuer: str = "http://127.0.0.1:8000"
    jwt_audience: str = "ecom"
    jwks_cache_seconds: int = 300
    revocations_url: str = "http://127.0.0.1:8000/.well-known/revocations.json"
    """Where the gateway lists disabled users/clients and revoked token ids; empty turns the check off."""
    revocations_cache_seconds: float = 5.0

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> ServiceSettings:
        if self.environment == "production":
            for name, value in self.model_dump().items():
                if isinstance(value, SecretStr):
                    value = value.get_secret_value()
                if isinstance(value, str) and DEV_SECRET_MARKER in value:
                    raise ValueError(
                        f"{name} still holds a development secret; set a real one for production"
                    )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
