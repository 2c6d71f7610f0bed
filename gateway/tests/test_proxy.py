"""Routing /api/<service>/... to real upstream servers through the pooled client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from gateway_harness import RunningGateway
from upstream_app import BIG_CHUNKS, CHUNK, create_upstream

from gateway.testing import free_port, serving


@pytest.fixture
async def upstream_url() -> AsyncIterator[str]:
    async with serving(create_upstream()) as url:
        yield url


@pytest.fixture
async def routed(start_gateway: Callable[..., Any], upstream_url: str) -> AsyncIterator[RunningGateway]:
    async with start_gateway(customer_url=upstream_url, upstream_timeout_seconds=0.5) as gw:
        yield gw


async def test_a_request_reaches_the_service_under_its_own_path(routed: RunningGateway) -> None:
    headers = await routed.machine_headers()

    response = await routed.http.get("/api/customers/v1/echo?q=1&q=2", headers=headers)

    assert response.status_code == 200
    assert response.json()["path"] == "/v1/echo"
    assert response.json()["query"] == "q=1&q=2"
    assert response.headers["x-upstream"] == "echo"


async def test_the_bearer_token_is_forwarded(routed: RunningGateway) -> None:
    headers = await routed.machine_headers()

    echoed = (await routed.http.get("/api/customers/v1/echo", headers=headers)).json()["headers"]

    assert echoed["authorization"] == headers["Authorization"]


async def test_forwarding_headers_and_trace_context_are_set(routed: RunningGateway) -> None:
    headers = {
        **await routed.machine_headers(),
        "X-Request-ID": "req-123",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }

    response = await routed.http.get("/api/customers/v1/echo", headers=headers)
    echoed = response.json()["headers"]

    assert echoed["x-request-id"] == "req-123"
    assert response.headers["x-request-id"] == "req-123"
    assert echoed["x-forwarded-for"].startswith("10.")
    assert echoed["x-forwarded-proto"] == "http"
    assert echoed["x-forwarded-host"] == "testserver"
    trace = echoed["traceparent"].split("-")
    assert trace[1] == "0af7651916cd43dd8448eb211c80319c"
    assert trace[2] != "b7ad6b7169203331"


async def test_a_trace_is_started_when_the_caller_sends_none(routed: RunningGateway) -> None:
    echoed = (await routed.http.get("/api/customers/v1/echo", headers=await routed.machine_headers())).json()[
        "headers"
    ]

    assert len(echoed["traceparent"].split("-")[1]) == 32


async def test_hop_by_hop_headers_are_not_forwarded(routed: RunningGateway) -> None:
    headers = {
        **await routed.machine_headers(),
        "Connection": "keep-alive, X-Hop-Secret",
        "X-Hop-Secret": "1",
        "TE": "trailers",
        "Proxy-Authorization": "Basic abc",
        "Cookie": "other=1",
    }

    response = await routed.http.get("/api/customers/v1/echo", headers=headers)
    echoed = response.json()["headers"]

    assert {"x-hop-secret", "te", "proxy-authorization", "cookie"}.isdisjoint(echoed)
    assert "keep-alive" not in response.headers


async def test_a_request_body_is_streamed_to_the_service(routed: RunningGateway) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b'{"a":', b' "streamed"}'):
            yield part

    response = await routed.http.post(
        "/api/customers/v1/echo", content=body(), headers=await routed.machine_headers()
    )

    assert response.json()["body"] == '{"a": "streamed"}'
    assert response.json()["method"] == "POST"


async def test_a_large_response_is_streamed_back(routed: RunningGateway) -> None:
    response = await routed.http.get("/api/customers/v1/big", headers=await routed.machine_headers())

    assert response.status_code == 200
    assert response.content == CHUNK * BIG_CHUNKS


async def test_a_service_that_is_down_answers_502_problem(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(product_url=f"http://127.0.0.1:{free_port()}") as gw:
        response = await gw.http.get("/api/products/v1/whoami", headers=await gw.machine_headers())

    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Bad Gateway"


async def test_a_slow_service_answers_504_problem(routed: RunningGateway) -> None:
    response = await routed.http.get("/api/customers/v1/slow", headers=await routed.machine_headers())

    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_service_answers_404_problem(routed: RunningGateway) -> None:
    response = await routed.http.get("/api/nothing/v1/x", headers=await routed.machine_headers())

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
