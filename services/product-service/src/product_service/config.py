"""Product service settings: environment variables with the PRODUCT_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"
DEFAULT_PORT = 8002


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PRODUCT_")

    service_name: str = "product-service"
    database_url: str = "sqlite+aiosqlite:///./var/product.db"
    completeness_threshold: float = Field(
        default=1.0, ge=0, le=1, description="Share of required attributes a product needs per channel"
    )
    channel_completeness_thresholds: dict[str, float] = Field(
        default_factory=dict, description='Per-channel overrides, JSON: {"marketplace": 0.8}'
    )

    def threshold_for(self, channel: str) -> float:
        return self.channel_completeness_thresholds.get(channel, self.completeness_threshold)
