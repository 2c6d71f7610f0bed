"""The pooled upstream connections and the services' keep-alive timeout: an idle connection is never
reused after the service may have closed it, and a request whose bytes were never sent is sent again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httptools
import pytest
from fastapi import FastAPI, Request
from gateway_harness import RunningGateway

from gateway.testing import serving
from gateway.upstream import Timeouts, Upstream, UpstreamPool

KEEP_ALIVE_S = 0.5


class _KeepAliveServer(asyncio.Protocol):
    """An HTTP/1.1 server that keeps a connection KEEP_ALIVE_S and then closes it, where the close
    crosses a request the client sends at that moment: a request arriving on a connection idle past the
    timeout is dropped unanswered with the connection, exactly what the client sees in that race."""

    answered = 0

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.idle_since = asyncio.get_running_loop().time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if asyncio.get_running_loop().time() - self.idle_since > KEEP_ALIVE_S:
            assert self.transport is not None
            self.transport.close()
            return
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        _KeepAliveServer.answered += 1
        body = json.dumps({"ok": True}).encode()
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
            % (len(body), body)
        )
        self.idle_since = asyncio.get_running_loop().time()


@asynccontextmanager
async def keep_alive_server() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_KeepAliveServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _post_all(gw: RunningGateway, headers: dict[str, str], count: int) -> list[int]:
    responses = await asyncio.gather(
        *(
            gw.http.post(f"/api/customers/v1/orders/{n}/cancel", json={"reason": "test"}, headers=headers)
            for n in range(count)
        )
    )
    return [response.status_code for response in responses]


async def test_posts_after_idling_past_the_keep_alive_get_no_502(start_gateway: Callable[..., Any]) -> None:
    async with (
        keep_alive_server() as url,
        start_gateway(customer_url=url, upstream_idle_timeout_seconds=KEEP_ALIVE_S / 2) as gw,
    ):
        headers = await gw.machine_headers()
        assert await _post_all(gw, headers, 10) == [200] * 10  # fills the pool with kept-alive connections

        await asyncio.sleep(KEEP_ALIVE_S * 1.5)

        assert await _post_all(gw, headers, 10) == [200] * 10


async def test_concurrent_posts_after_a_real_uvicorn_closed_its_idle_connections(
    start_gateway: Callable[..., Any],
) -> None:
    service = FastAPI()

    @service.post("/v1/orders/{order_id}/cancel")
    async def cancel(order_id: str, request: Request) -> dict[str, str]:
        await request.body()
        return {"id": order_id, "status": "cancelled"}

    async with (
        serving(service, lifespan="off", timeout_keep_alive=1) as url,
        start_gateway(customer_url=url, upstream_idle_timeout_seconds=0.5) as gw,
    ):
        headers = await gw.machine_headers()
        for _ in range(3):
            assert await _post_all(gw, headers, 20) == [200] * 20
            await asyncio.sleep(1.1)  # past the service's keep-alive: it closes every idle connection


@pytest.mark.parametrize("method", [b"POST", b"PATCH", b"GET"])
async def test_a_request_not_yet_sent_is_sent_again_on_a_new_connection_whatever_its_method(
    method: bytes,
) -> None:
    async with keep_alive_server() as url:
        upstream = Upstream.parse(url)
        pool = UpstreamPool(max_connections=4, timeouts=Timeouts(1, 1, 1, 1), idle_timeout=60)
        try:
            first = await pool.send(upstream, b"GET", b"/", [])
            await first.read(1)
            await first.aclose()
            (kept,) = pool._idle[upstream]
            assert kept.transport is not None
            kept.transport.close()  # closing, but the pool has not heard of it yet

            async def body() -> AsyncIterator[bytes]:
                yield b'{"n": 1}'

            has_body = method != b"GET"
            headers = [(b"content-length", b"8")] if has_body else []
            response = await pool.send(upstream, method, b"/", headers, body() if has_body else None)
            assert response.status == 200
            await response.aclose()
        finally:
            await pool.aclose()
