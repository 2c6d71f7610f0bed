"""Applying the rate limiter: per client or user on proxied calls, per address on the auth endpoints and
on calls with a missing or invalid token; the caller's address, with X-Forwarded-For believed only when
the connection comes from a configured proxy."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from fastapi import Request

from gateway.ratelimit import Decision
from gateway.runtime import Gateway, GatewayDep
from servicekit.errors import ServiceError


class TooManyRequests(ServiceError):
    status, title = 429, "Too Many Requests"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 192.168.1.7` -> networks (a bare address is a network of one)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: str | None, networks: tuple[Network, ...]) -> str:
    """The caller's address: the peer, unless the peer is a trusted proxy; then the right-most address
    in X-Forwarded-For that is not itself a trusted proxy (what a client sends in front is not
    believed)."""
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # not what a proxy appends: believe nothing further
        if not any(ip in network for network in networks):
            return str(ip)
    return peer


def client_ip(request: Request) -> str:
    peer = request.client.host if request.client else "unknown"
    gateway: Gateway | None = getattr(request.app.state, "gateway", None)
    if gateway is None or not gateway.settings.trusted_proxies:
        return peer
    networks = parse_networks(gateway.settings.trusted_proxies)
    return forwarded_client(peer, request.headers.get("x-forwarded-for"), networks)


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


async def limit_refused_ip(gateway: Gateway, request: Request) -> None:
    """A call was refused for a missing or invalid token: count it against the caller's address, and
    answer 429 instead of 401 once that address has spent its allowance (guessing or replaying tokens
    gets slow)."""
    settings = gateway.settings
    decision = await gateway.limiter.hit(
        f"refused-ip:{client_ip(request)}",
        rate=settings.refused_rate_limit_rate_per_second,
        burst=settings.refused_rate_limit_burst,
    )
    raise_if_limited(decision)
