"""Token-bucket rate limits: per caller on proxied calls, per IP on auth endpoints; memory and Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from gateway_harness import RunningGateway
from upstream_app import create_upstream

from gateway.testing import serving


@pytest.fixture
async def upstream_url() -> AsyncIterator[str]:
    async with serving(create_upstream()) as url:
        yield url


def _redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.fail("TEST_REDIS_URL must be set for the Redis tests (make test-pg sets it)")
    return url


async def _exhaust_token_endpoint(gw: RunningGateway, attempts: int) -> list[Any]:
    return [
        await gw.http.post("/oauth/token", data={"grant_type": "client_credentials"}) for _ in range(attempts)
    ]


async def test_auth_endpoint_answers_429_with_retry_after_per_ip(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(auth_rate_limit_burst=3, auth_rate_limit_rate_per_second=0.01) as gw:
        responses = await _exhaust_token_endpoint(gw, 4)

    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    limited = responses[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-limit"] == "3"
    assert limited.headers["ratelimit-remaining"] == "0"


async def test_proxied_calls_are_limited_per_caller(
    start_gateway: Callable[..., Any], upstream_url: str
) -> None:
    async with start_gateway(
        customer_url=upstream_url, rate_limit_burst=2, rate_limit_rate_per_second=0.01
    ) as gw:
        headers = await gw.machine_headers()
        other = await gw.machine_headers("pos")
        statuses = [
            (await gw.http.get("/api/customers/v1/echo", headers=headers)).status_code for _ in range(3)
        ]
        other_status = (await gw.http.get("/api/customers/v1/echo", headers=other)).status_code

    assert statuses == [200, 200, 429]
    assert other_status == 200


async def test_proxied_answers_carry_ratelimit_headers(
    start_gateway: Callable[..., Any], upstream_url: str
) -> None:
    async with start_gateway(customer_url=upstream_url, rate_limit_burst=5) as gw:
        response = await gw.http.get("/api/customers/v1/echo", headers=await gw.machine_headers())

    assert response.headers["ratelimit-limit"] == "5"
    assert response.headers["ratelimit-remaining"] == "4"


@pytest.mark.postgres
async def test_redis_rate_limit_answers_429_with_retry_after(start_gateway: Callable[..., Any]) -> None:
    prefix = f"test:{uuid.uuid4().hex}"
    async with start_gateway(
        redis_url=_redis_url(),
        redis_key_prefix=prefix,
        auth_rate_limit_burst=2,
        auth_rate_limit_rate_per_second=0.01,
    ) as gw:
        responses = await _exhaust_token_endpoint(gw, 3)

    assert [r.status_code for r in responses] == [401, 401, 429]
    assert int(responses[-1].headers["retry-after"]) >= 1


@pytest.mark.postgres
async def test_redis_rate_limit_is_shared_by_gateway_replicas(
    start_gateway: Callable[..., Any], upstream_url: str
) -> None:
    settings = {
        "redis_url": _redis_url(),
        "redis_key_prefix": f"test:{uuid.uuid4().hex}",
        "customer_url": upstream_url,
        "rate_limit_burst": 2,
        "rate_limit_rate_per_second": 0.01,
    }
    async with start_gateway(**settings) as first, start_gateway(**settings) as second:
        headers = await first.machine_headers()
        statuses = [
            (await replica.http.get("/api/customers/v1/echo", headers=headers)).status_code
            for replica in (first, second, first)
        ]

    assert statuses == [200, 200, 429]
