"""Applying the rate limiter: per client or user on proxied calls, per IP on the auth endpoints."""

from __future__ import annotations

from fastapi import Request

from gateway.ratelimit import Decision
from gateway.runtime import Gateway, GatewayDep
from servicekit.errors import ServiceError


class TooManyRequests(ServiceError):
    status, title = 429, "Too Many Requests"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def raise_if_limited(decision: Decision) -> None:
    if not decision.allowed:
        raise TooManyRequests(
            f"Rate limit reached; retry in {decision.retry_after} s.", headers=decision.headers()
        )


async def limit_caller(gateway: Gateway, subject: str) -> Decision:
    settings = gateway.settings
    decision = await gateway.limiter.hit(
        f"caller:{subject}", rate=settings.rate_limit_rate_per_second, burst=settings.rate_limit_burst
    )
    raise_if_limited(decision)
    return decision


async def limit_auth_ip(request: Request, gateway: GatewayDep) -> None:
    """Dependency of the auth endpoints: a token bucket per client IP."""
    settings = gateway.settings
    decision = await gateway.limiter.hit(
        f"auth-ip:{client_ip(request)}",
        rate=settings.auth_rate_limit_rate_per_second,
        burst=settings.auth_rate_limit_burst,
    )
    raise_if_limited(decision)
