"""Routing /api/<service>/... to real upstream servers through the pooled client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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


async def test_a_services_redirect_points_at_the_gateway_never_behind_it(
    routed: RunningGateway, upstream_url: str
) -> None:
    headers = await routed.machine_headers()
    # Starlette's trailing-slash redirect: the service builds an absolute URL of its own address.
    slash = await routed.http.get("/api/customers/v1/echo/?q=1", headers=headers)
    assert slash.status_code == 307
    assert slash.headers["location"] == "/api/customers/v1/echo?q=1"
    moved = await routed.http.get("/api/customers/v1/moved", headers=headers)
    assert (moved.status_code, moved.headers["location"]) == (308, "/api/customers/v1/echo?from=moved")
    followed = await routed.http.get(moved.headers["location"], headers=headers)
    assert followed.json()["query"] == "from=moved"
    away = await routed.http.get("/api/customers/v1/away", headers=headers)
    assert (away.status_code, away.headers["location"]) == (302, "https://example.com/elsewhere")
    for response in (slash, moved, away):
        assert upstream_url.split("//")[1] not in response.headers["location"]


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


async def test_a_request_body_with_a_length_reaches_the_service(routed: RunningGateway) -> None:
    response = await routed.http.put(
        "/api/customers/v1/echo", json={"a": 1}, headers=await routed.machine_headers()
    )

    assert response.json()["method"] == "PUT"
    assert response.json()["body"] == '{"a":1}'
    assert response.json()["headers"]["content-length"] == "7"


async def test_the_path_and_query_are_forwarded_as_sent(routed: RunningGateway) -> None:
    response = await routed.http.get(
        "/api/customers/v1/raw/a%0D%0AX-Injected:%201/%2F?x=%20y", headers=await routed.machine_headers()
    )

    assert response.status_code == 200
    assert response.json() == {"raw_path": "/v1/raw/a%0D%0AX-Injected:%201/%2F", "query": "x=%20y"}


async def test_headers_the_service_names_in_connection_are_not_passed_back(routed: RunningGateway) -> None:
    response = await routed.http.get("/api/customers/v1/raw/x", headers=await routed.machine_headers())

    assert "x-upstream-secret" not in response.headers
    assert response.status_code == 200
    assert len(response.headers.get_list("date")) <= 1


async def test_a_head_request_answers_the_services_headers_without_a_body(routed: RunningGateway) -> None:
    response = await routed.http.head("/api/customers/v1/raw/x", headers=await routed.machine_headers())

    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


async def test_more_concurrent_calls_than_pooled_connections_all_succeed(
    start_gateway: Callable[..., Any], upstream_url: str
) -> None:
    async with start_gateway(customer_url=upstream_url, upstream_max_connections=2) as gw:
        headers = await gw.machine_headers()

        responses = await asyncio.gather(
            *(gw.http.get(f"/api/customers/v1/echo?n={n}", headers=headers) for n in range(12))
        )

    assert [r.json()["query"] for r in responses] == [f"n={n}" for n in range(12)]


async def test_a_restarted_service_is_reached_on_a_new_connection(start_gateway: Callable[..., Any]) -> None:
    port = free_port()
    async with start_gateway(customer_url=f"http://127.0.0.1:{port}") as gw:
        headers = await gw.machine_headers()
        async with serving(create_upstream(), port=port):
            first = await gw.http.get("/api/customers/v1/echo", headers=headers)
        async with serving(create_upstream(), port=port):
            second = await gw.http.get("/api/customers/v1/echo", headers=headers)

    assert (first.status_code, second.status_code) == (200, 200)


@asynccontextmanager
async def _closing_second_request() -> AsyncIterator[str]:
    """A real HTTP/1.1 server that answers the first request on a connection (kept alive) and closes the
    connection, unanswered, on the second: the race of reusing a connection the service just closed."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            body = b'{"ok":true}'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_an_idempotent_call_on_a_connection_the_service_just_closed_is_sent_again(
    start_gateway: Callable[..., Any],
) -> None:
    async with _closing_second_request() as url, start_gateway(customer_url=url) as gw:
        headers = await gw.machine_headers()
        first = await gw.http.get("/api/customers/v1/x", headers=headers)
        second = await gw.http.get("/api/customers/v1/x", headers=headers)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"ok": True}


async def test_a_post_on_a_connection_the_service_just_closed_is_not_sent_again(
    start_gateway: Callable[..., Any],
) -> None:
    async with _closing_second_request() as url, start_gateway(customer_url=url) as gw:
        headers = await gw.machine_headers()
        await gw.http.get("/api/customers/v1/x", headers=headers)
        response = await gw.http.post("/api/customers/v1/x", headers=headers)

    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"


SIGNATURE = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,c2ln"}


async def test_a_signed_webhook_is_forwarded_without_a_token_for_the_service_to_check(
    start_gateway: Callable[..., Any], upstream_url: str
) -> None:
    async with start_gateway(sync_url=upstream_url) as gw:
        response = await gw.http.post(
            "/api/sync/v1/shipments/webhook?partner=acme", content=b'{"a": 1}', headers=SIGNATURE
        )
        elsewhere = await gw.http.post("/api/sync/v1/echo", content=b"{}", headers=SIGNATURE)

    assert response.status_code == 200
    echoed = response.json()
    assert (echoed["path"], echoed["query"], echoed["body"]) == (
        "/v1/shipments/webhook",
        "partner=acme",
        '{"a": 1}',
    )
    assert "authorization" not in echoed["headers"]
    assert echoed["headers"]["webhook-signature"] == SIGNATURE["webhook-signature"]
    assert elsewhere.status_code == 401
