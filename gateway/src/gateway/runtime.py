"""What the running gateway holds: keys, verifier, status caches, rate limiter, upstream HTTP client."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request

from gateway.config import Settings
from gateway.keys import KeyRing, ensure_signing_key
from gateway.principals import PrincipalStatus
from gateway.ratelimit import RateLimiter, make_rate_limiter
from gateway.security import SecretBox
from gateway.upstream import Timeouts, Upstream, UpstreamPool
from servicekit.auth import Caller, TokenVerifier
from servicekit.db import Database

PUBLIC_CLIENT_ID = "ecom-web"
"""The `client_id` claim of tokens issued to people (password grant, browser sessions)."""

CALLER_CACHE_SIZE = 20_000


@dataclass
class SessionToken:
    """An access token minted for a browser session, reused until shortly before it expires."""

    token: str
    caller: Caller
    csrf_token: str
    expires_at: float
    checked_at: float


@dataclass
class Gateway:
    settings: Settings
    database: Database
    box: SecretBox
    keyring: KeyRing
    principals: PrincipalStatus
    verifier: TokenVerifier
    limiter: RateLimiter
    upstream: UpstreamPool
    """The connection pool the proxy forwards through (httpx's per-request bookkeeping was most of the
    hop's CPU in bench/)."""
    upstreams: dict[str, Upstream]
    """The path segment under /api/ to the service's parsed base URL."""
    http: httpx.AsyncClient
    """For the gateway's own calls (fetching the services' API docs)."""
    callers: dict[str, Caller] = field(default_factory=dict)
    session_tokens: dict[str, SessionToken] = field(default_factory=dict)
    docs_cache: tuple[float, dict[str, Any]] | None = None

    def remember_caller(self, token: str, caller: Caller) -> None:
        if len(self.callers) >= CALLER_CACHE_SIZE:
            now = time.time()
            self.callers = {t: c for t, c in self.callers.items() if c.claims.get("exp", 0) > now}
            if len(self.callers) >= CALLER_CACHE_SIZE:
                self.callers.clear()
        self.callers[token] = caller


class GatewayKeys:
    """servicekit KeySource over the running gateway's key ring (no HTTP round trip to itself)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def get(self, kid: str) -> dict[str, Any] | None:
        gateway: Gateway | None = getattr(self.app.state, "gateway", None)
        return None if gateway is None else await gateway.keyring.get(kid)


def upstream_pool(settings: Settings) -> UpstreamPool:
    """The pool the proxy forwards through: connect, read, write and pool-wait timeouts."""
    total = settings.upstream_timeout_seconds
    timeouts = Timeouts(
        connect=settings.upstream_connect_timeout_seconds, read=total, write=total, pool=total
    )
    return UpstreamPool(
        max_connections=settings.upstream_max_connections,
        timeouts=timeouts,
        idle_timeout=settings.upstream_idle_timeout_seconds,
    )


async def start_gateway(app: FastAPI, settings: Settings) -> Gateway:
    """Build the gateway's runtime on the app's database; create the first signing key if needed."""
    database: Database = app.state.database
    box = SecretBox(settings.key_encryption_key.get_secret_value())
    async with database.session() as session:
        await ensure_signing_key(session, box)
    keyring = KeyRing(database, box, cache_seconds=settings.key_cache_seconds)
    await keyring.load()
    gateway = Gateway(
        settings=settings,
        database=database,
        box=box,
        keyring=keyring,
        principals=PrincipalStatus(database, cache_seconds=settings.principal_cache_seconds),
        verifier=TokenVerifier(keyring, issuer=settings.jwt_issuer, audience=settings.jwt_audience),
        limiter=make_rate_limiter(settings.redis_url, prefix=settings.redis_key_prefix),
        upstream=upstream_pool(settings),
        upstreams={name: Upstream.parse(url) for name, url in settings.upstreams.items()},
        http=httpx.AsyncClient(follow_redirects=False, trust_env=False),
    )
    app.state.gateway = gateway
    return gateway


async def stop_gateway(app: FastAPI) -> None:
    gateway: Gateway | None = getattr(app.state, "gateway", None)
    if gateway is not None:
        await gateway.http.aclose()
        await gateway.upstream.aclose()
        await gateway.limiter.close()


async def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
