"""What `ecom dev` runs: the gateway and the four services, their ports and their environment."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_BROKER_PORT = 9092
DEFAULT_VAR_DIR = Path("var")


@dataclass(frozen=True)
class StackService:
    """One process of the dev stack: an ASGI app in a Python package, with its own env prefix."""

    name: str
    package: str
    port: int
    env_prefix: str
    colour: str

    @property
    def asgi_app(self) -> str:
        return f"{self.package}.main:app"

    @property
    def config_module(self) -> str:
        """The module holding `ALEMBIC_INI`, the path of the service's alembic.ini."""
        return f"{self.package}.config"

    @property
    def database_url_var(self) -> str:
        return f"{self.env_prefix}DATABASE_URL"


STACK: list[StackService] = [
    StackService("gateway", "gateway", 8000, "GATEWAY_", "magenta"),
    StackService("customer", "customer_service", 8001, "CUSTOMER_", "cyan"),
    StackService("product", "product_service", 8002, "PRODUCT_", "green"),
    StackService("sync", "sync_service", 8003, "SYNC_", "yellow"),
    StackService("analytics", "analytics_service", 8004, "ANALYTICS_", "blue"),
]

GATEWAY = STACK[0]
GATEWAY_ROUTES: dict[str, str] = {
    "customer": "GATEWAY_CUSTOMER_URL",
    "product": "GATEWAY_PRODUCT_URL",
    "sync": "GATEWAY_SYNC_URL",
    "analytics": "GATEWAY_ANALYTICS_URL",
}
"""The gateway's variable holding the URL of each service it routes to."""
BROKER = "broker"
REFERENCE_CHANNEL = "reference-channel"
"""The reference sales channel (sync_service.reference_channel) that the seeded push channels point at."""
DEFAULT_PORTS: dict[str, int] = (
    {BROKER: DEFAULT_BROKER_PORT} | {s.name: s.port for s in STACK} | {REFERENCE_CHANNEL: 8005}
)
"""The default port of each process of the dev stack, by name."""


def service_named(name: str) -> StackService:
    for service in STACK:
        if service.name == name:
            return service
    raise KeyError(name)


def url_host(host: str) -> str:
    """The host to put in a URL that reaches a server listening on `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def base_url(host: str, port: int) -> str:
    return f"http://{url_host(host)}:{port}"


def sqlite_url(var_dir: Path, name: str) -> str:
    """The SQLite database of one service under the (absolute) var directory."""
    return f"sqlite+aiosqlite:///{var_dir.resolve() / f'{name}.db'}"


SYNC_CLIENT_FILE_VAR = "ECOM_SYNC_CLIENT_FILE"
"""Where `ecom seed` leaves sync-service's own gateway client (id and secret) for `ecom dev` to pass on."""


def sync_client_path(var_dir: Path) -> Path:
    return var_dir / "sync-client.json"


def read_sync_client(var_dir: Path) -> dict[str, str] | None:
    """sync-service's client id and secret as `ecom seed` left them, if it did."""
    try:
        loaded = json.loads(sync_client_path(var_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(loaded, dict) or not all(
        isinstance(loaded.get(key), str) for key in ("client_id", "client_secret")
    ):
        return None
    return {"client_id": loaded["client_id"], "client_secret": loaded["client_secret"]}


def broker_log_path(var_dir: Path) -> Path:
    return var_dir / "broker.log"


def broker_data_dir(var_dir: Path) -> Path:
    """Where the durable embedded broker keeps its topics and consumer-group offsets."""
    return var_dir / "broker"


def service_env(
    service: StackService,
    *,
    var_dir: Path,
    host: str = DEFAULT_HOST,
    gateway_port: int = GATEWAY.port,
    bootstrap_servers: str | None = None,
    base_env: Mapping[str, str] | None = None,
    ports: Mapping[str, int] | None = None,
    fetch_max_wait_ms: int | None = None,
) -> dict[str, str]:
    """The environment of a service's process: the caller's, plus the wiring of the dev stack.

    A database URL or ENVIRONMENT already set by the caller wins, so `ecom dev` can run against
    PostgreSQL too. `ports` (by stack service name) tells the gateway where it routes each service.
    `fetch_max_wait_ms` is the consumers' fetch wait the broker needs (`EmbeddedBroker.fetch_max_wait_ms`).
    """
    env = dict(os.environ if base_env is None else base_env)
    env.setdefault(service.database_url_var, sqlite_url(var_dir, service.name))
    env.setdefault("ENVIRONMENT", "development")
    gateway_url = base_url(host, gateway_port)
    env[f"{service.env_prefix}JWKS_URL"] = f"{gateway_url}/.well-known/jwks.json"
    env[f"{service.env_prefix}JWT_ISSUER"] = gateway_url
    env[f"{service.env_prefix}REVOCATIONS_URL"] = f"{gateway_url}/.well-known/revocations.json"
    if service.name == GATEWAY.name:
        for name, variable in GATEWAY_ROUTES.items():
            port = (ports or {}).get(name, service_named(name).port)
            env[variable] = base_url(host, port)
    if service.name == "analytics":
        # Supplier lead times and minimum order quantities come from product-service's API.
        product_port = (ports or {}).get("product", service_named("product").port)
        env.setdefault("ANALYTICS_PRODUCT_SERVICE_URL", base_url(host, product_port))
        # Forecasts, recommendations and CLV are fitted at start and every 10 minutes; a fit that found no
        # sales yet (the seeded history still on its way through the broker) is tried again a minute later.
        env.setdefault("ANALYTICS_MODEL_REFIT_INTERVAL_S", "600")
        env.setdefault("ANALYTICS_MODEL_REFIT_EMPTY_RETRY_S", "60")
    if service.name == "sync":
        # A full resync reads the catalogue from product-service's API with sync-service's own client.
        product_port = (ports or {}).get("product", service_named("product").port)
        env.setdefault("SYNC_PRODUCT_SERVICE_URL", base_url(host, product_port))
        env.setdefault("SYNC_TOKEN_URL", f"{gateway_url}/oauth/token")
        client = read_sync_client(var_dir)
        if client is not None:
            env.setdefault("SYNC_CLIENT_ID", client["client_id"])
            env.setdefault("SYNC_CLIENT_SECRET", client["client_secret"])
    if bootstrap_servers is not None:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap_servers
        # The embedded broker holds a consumer-group join for about half the session timeout.
        env.setdefault("KAFKA_SESSION_TIMEOUT_MS", "3000")
        if fetch_max_wait_ms is not None:
            env.setdefault("KAFKA_FETCH_MAX_WAIT_MS", str(fetch_max_wait_ms))
    env["PYTHONUNBUFFERED"] = "1"
    return env


HTTP_PROTOCOL = "servicekit.http.server:ProblemHttpProtocol"
"""uvicorn's HTTP protocol with its answer to an unreadable request (malformed, or a request line or header
past 64 KiB) as problem+json instead of plain text."""

SERVICE_KEEP_ALIVE_SECONDS = 5
"""How long each server keeps an idle connection (uvicorn's default, stated): the gateway's upstream
pool drops its idle connections sooner (GATEWAY_UPSTREAM_IDLE_TIMEOUT_SECONDS, 4 s)."""


def uvicorn_command(service: StackService, *, host: str, port: int) -> list[str]:
    """The server of one stack process. The gateway reads X-Forwarded-For itself, from configured proxies
    only (GATEWAY_TRUSTED_PROXIES): uvicorn's own proxy-header handling would believe any local caller."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        service.asgi_app,
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        "--http",
        HTTP_PROTOCOL,
        "--timeout-keep-alive",
        str(SERVICE_KEEP_ALIVE_SECONDS),
        "--no-proxy-headers",
    ]


def reference_channel_secrets_path(var_dir: Path) -> Path:
    """Where `ecom seed` leaves the seeded channels' signing secrets for the reference channel server."""
    return var_dir / "reference-channel-secrets.json"


def reference_channel_env(
    var_dir: Path, host: str, port: int, base_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the reference channel server and the seeders need to know of it: its URL and secrets file."""
    env = dict(os.environ if base_env is None else base_env)
    env["ECOM_REFERENCE_CHANNEL_URL"] = base_url(host, port)
    env["REFERENCE_CHANNEL_SECRETS_FILE"] = str(reference_channel_secrets_path(var_dir))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def reference_channel_command(*, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "sync_service.reference_channel:app",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        "--http",
        HTTP_PROTOCOL,
    ]
