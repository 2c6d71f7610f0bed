"""Pure-ASGI middleware: request ids and Prometheus request metrics labelled by route template."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import metrics
from servicekit.errors import unhandled_error_response
from servicekit.logging import correlation_id_var, request_id_var

REQUEST_ID_HEADER = b"x-request-id"
CORRELATION_ID_HEADER = b"x-correlation-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _safe(value: bytes) -> str | None:
    text = value.decode("latin-1")
    return text if _SAFE_ID.match(text) else None


def _ids(scope: Scope) -> tuple[str | None, str | None]:
    """X-Request-ID and X-Correlation-ID of the request (the first of each), None when absent or unsafe;
    one pass over the headers."""
    request_id = correlation_id = None
    seen_request_id = seen_correlation_id = False
    for key, value in scope.get("headers", ()):
        if key == REQUEST_ID_HEADER and not seen_request_id:
            request_id, seen_request_id = _safe(value), True
        elif key == CORRELATION_ID_HEADER and not seen_correlation_id:
            correlation_id, seen_correlation_id = _safe(value), True
    return request_id, correlation_id


class RequestIdMiddleware:
    """Takes X-Request-ID (or makes one), exposes it to logs and echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, correlation_id = _ids(scope)
        if request_id is None:
            request_id = os.urandom(16).hex()  # same shape as uuid4().hex, without building a UUID
        if correlation_id is None:
            correlation_id = request_id
        rid_token = request_id_var.set(request_id)
        cid_token = correlation_id_var.set(correlation_id)

        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Starlette renders unhandled errors outside every middleware, where the request id is gone;
            # answer here so the 500 problem and its log line carry the id like every other answer.
            if response_started:
                raise
            response = await unhandled_error_response(Request(scope), exc)
            await response(scope, receive, send_with_id)
        finally:
            request_id_var.reset(rid_token)
            correlation_id_var.reset(cid_token)


class MetricsMiddleware:
    """Counts requests and times them; the route label is the matched template, never the raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or "<unmatched>"
            counter, histogram = _children(scope.get("method", "GET"), template, status)
            counter.inc()
            histogram.observe(time.perf_counter() - start)


_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_CHILDREN_LIMIT = 10_000


def _children(method: str, template: str, status: int) -> tuple[Any, Any]:
    """The request counter and duration histogram of these labels; `labels()` takes a lock and
    validates on every call, so the children are kept. Templates and statuses are few; methods are
    bounded by the limit (past it, children are looked up, not kept)."""
    key = (method, template, status)
    children = _CHILDREN.get(key)
    if children is None:
        children = (
            metrics.HTTP_REQUESTS.labels(method, template, str(status)),
            metrics.HTTP_DURATION.labels(method, template),
        )
        if len(_CHILDREN) < _CHILDREN_LIMIT:
            _CHILDREN[key] = children
    return children


class HeadAsGet:
    """HEAD on a path that has a GET route (and no HEAD route of its own) is answered as that GET, with
    the same status and headers and no body (RFC 9110 §9.3.2): FastAPI's routes take only the methods
    they declare, so `curl -I` on any resource got 405. Everything inside sees a GET."""

    def __init__(self, app: ASGIApp, router: Any) -> None:
        self.app = app
        self.router = router

    def _has_get(self, scope: Scope) -> bool:
        as_get = {**scope, "method": "GET"}
        full = Match.FULL
        head_routes = any(route.matches(scope)[0] == full for route in self.router.routes)
        return not head_routes and any(route.matches(as_get)[0] == full for route in self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not self._has_get(scope):
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)
