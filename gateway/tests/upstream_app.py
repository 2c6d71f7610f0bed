"""A small real upstream for proxy tests: echoes what it received, or is slow, or streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

BIG_CHUNKS = 64
CHUNK = b"x" * 16384


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": dict(request.headers.items()),
            "body": body.decode(errors="replace"),
        },
        headers={"X-Upstream": "echo", "Keep-Alive": "timeout=5"},
    )


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return JSONResponse({"slow": True})


async def big(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(BIG_CHUNKS):
            yield CHUNK

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def moved(request: Request) -> Response:
    """A redirect to a path on this service's root."""
    return RedirectResponse("/v1/echo?from=moved", status_code=308)


async def away(request: Request) -> Response:
    """A redirect somewhere else entirely."""
    return RedirectResponse("https://example.com/elsewhere", status_code=302)


def create_upstream() -> ASGIApp:
    """The routes above, and /v1/raw/... answering the raw path it received (whatever its bytes)."""
    app = Starlette(
        routes=[
            Route("/v1/echo", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/v1/shipments/webhook", echo, methods=["POST"]),
            Route("/v1/slow", slow),
            Route("/v1/big", big),
            Route("/v1/moved", moved),
            Route("/v1/away", away),
            Route("/dashboard", echo),
            Route("/dashboard/{path:path}", echo),
        ]
    )

    async def upstream(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/raw/"):
            response = JSONResponse(
                {"raw_path": scope["raw_path"].decode("latin-1"), "query": scope["query_string"].decode()},
                headers={"Connection": "X-Upstream-Secret", "X-Upstream-Secret": "1"},
            )
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return upstream
