"""Ecom gateway settings: environment variables with the GATEWAY_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings

SERVICE_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = SERVICE_ROOT / "alembic.ini"
DEFAULT_PORT = 8000

DEV_KEY_ENCRYPTION_KEY = "dev-only-gateway-key-encryption-key-change-me"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    service_name: str = "gateway"
    database_url: str = "sqlite+aiosqlite:///./var/gateway.db"

    # Tokens
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 14 * 24 * 3600
    key_encryption_key: SecretStr = SecretStr(DEV_KEY_ENCRYPTION_KEY)
    key_cache_seconds: float = 5.0
    principal_cache_seconds: float = 5.0
    totp_issuer: str = "Ecom"

    # Lockout: after `lockout_threshold` failures an account (or IP) is locked for
    # base * 2^(failures - threshold) seconds, at most `lockout_max_seconds`.
    lockout_threshold: int = 5
    lockout_ip_threshold: int = 20
    lockout_base_seconds: int = 30
    lockout_max_seconds: int = 3600

    # Rate limits (token buckets): proxied calls per client or user, auth endpoints per IP.
    rate_limit_rate_per_second: float = 50.0
    rate_limit_burst: int = 100
    auth_rate_limit_rate_per_second: float = 1.0
    auth_rate_limit_burst: int = 20
    # Calls refused for a missing or invalid token, per address: past the burst they get 429.
    refused_rate_limit_rate_per_second: float = 5.0
    refused_rate_limit_burst: int = 50
    trusted_proxies: str = ""
    """Comma-separated addresses or networks of reverse proxies in front of the gateway: only a
    connection from one of them has its X-Forwarded-For believed for per-address limits and audit
    (run uvicorn with --no-proxy-headers, or it rewrites the address before the gateway sees it)."""
    redis_url: str | None = None
    redis_key_prefix: str = "ecom:gateway:rl"

    # Routing
    customer_url: str = "http://127.0.0.1:8001"
    product_url: str = "http://127.0.0.1:8002"
    sync_url: str = "http://127.0.0.1:8003"
    analytics_url: str = "http://127.0.0.1:8004"
    upstream_connect_timeout_seconds: float = 2.0
    upstream_timeout_seconds: float = 30.0
    upstream_max_connections: int = 200
    upstream_idle_timeout_seconds: float = 4.0
    """How long an idle pooled connection to a service may be reused: keep it below the services'
    keep-alive timeout (uvicorn's `--timeout-keep-alive`, 5 s by default and in `ecom dev`), so the
    gateway never sends a request on a connection the service is closing (a 502)."""
    docs_fetch_timeout_seconds: float = 2.0
    docs_cache_seconds: float = 30.0

    # Browser sessions
    session_ttl_seconds: int = 8 * 3600
    session_cookie_name: str = "ecom_session"
    csrf_cookie_name: str = "ecom_csrf"

    @property
    def cookie_secure(self) -> bool:
        return self.environment != "development"

    @property
    def upstreams(self) -> dict[str, str]:
        """The path segment under /api/ to the base URL of the service it routes to."""
        return {
            "customers": self.customer_url.rstrip("/"),
            "products": self.product_url.rstrip("/"),
            "sync": self.sync_url.rstrip("/"),
            "analytics": self.analytics_url.rstrip("/"),
        }
