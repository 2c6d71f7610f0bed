"""Customer service settings: environment variables with the CUSTOMER_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"
DEFAULT_PORT = 8001

# Development defaults: they carry the "dev-only" marker, so a production start refuses them.
DEV_MASTER_KEYS = "dev-only-1:ZGV2LW9ubHktbWFzdGVyLWtleS0wMDAwMDAwMDAwMDA="
DEV_BLIND_INDEX_KEY = "dev-only-blind-index-key-change-me-in-production"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_")

    service_name: str = "customer-service"
    database_url: str = "sqlite+aiosqlite:///./var/customer.db"

    master_keys: SecretStr = Field(
        default=SecretStr(DEV_MASTER_KEYS),
        description="kid:base64(32-byte key) pairs, comma separated; the first wraps new data keys",
    )
    blind_index_key: SecretStr = Field(
        default=SecretStr(DEV_BLIND_INDEX_KEY), description="HMAC key of the blind indexes"
    )
    previous_blind_index_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Former blind-index keys, comma separated: exact lookups also try them until "
        "POST /v1/admin/keys/reindex has re-computed every index under the current key",
    )
    default_phone_region: str = Field(
        default="FR", description="Region used to parse phone numbers written without a country code"
    )
    duplicate_threshold: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Match probability from which a pair is listed as a candidate duplicate for review",
    )
    auto_merge_threshold: float = Field(
        default=0.999,
        ge=0,
        le=1,
        description="Match probability from which a candidate pair is merged automatically",
    )
    auto_merge_enabled: bool = True
    linkage_min_training_profiles: int = Field(
        default=1000,
        ge=2,
        description="Fewest active profiles POST /v1/duplicates/model/train fits a model to (a smaller base "
        "cannot show EM enough duplicates; the model in use stays)",
    )
    import_chunk_rows: int = Field(
        default=5000,
        ge=1,
        description="Rows an import job commits per transaction (each commit writes every index page the "
        "chunk touched; fewer, larger commits write far fewer pages, but hold SQLite's write lock longer)",
    )
    import_validation_processes: int = Field(
        default=2,
        ge=0,
        le=16,
        description="Worker processes that validate the rows of an import file of more than one block "
        "(5,000 rows), started by an upload and stopped after 5 minutes without imports (0: validate in a "
        "thread of the service process)",
    )
    import_scoring_process: bool = Field(
        default=True,
        description="Score the duplicates of an import of more than one chunk in a worker process of its "
        "own, while the service writes the chunk (started by an upload, stopped after 5 minutes without "
        "imports; false: score in the service process)",
    )
    import_stale_after_seconds: int = Field(
        default=120,
        ge=1,
        description="An import job with no progress for this long is considered abandoned (its process "
        "stopped) and is marked failed at start-up or when read",
    )
