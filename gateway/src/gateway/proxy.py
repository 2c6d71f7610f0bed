"""Routing: /api/<service>/<path> to the service through one pooled upstream client (gateway.upstream).

The gateway verifies the caller (and applies its rate limit) before forwarding; the service verifies
the token again. Headers travel as the bytes the server parsed; the path and query are forwarded raw
(never decoded and re-encoded). Small responses are read whole, bigger or unsized ones are streamed;
request bodies are always streamed.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth import authenticate_request
from gateway.limits import client_ip, limit_caller
from gateway.runtime import Gateway
from gateway.upstream import Headers, Upstream, UpstreamError, UpstreamResponse, UpstreamTimeout
from servicekit.errors import ServiceError, problem_response
from servicekit.http.limits import raise_body_limit
from servicekit.logging import request_id_var
from servicekit.middleware import MetricsMiddleware, RequestIdMiddleware

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Not forwarded upstream: hop-by-hop, the host (the upstream's is sent), cookies (the session is turned
# into a Bearer token; services never see the gateway's cookies) and headers the gateway sets.
_DROP_REQUEST = HOP_BY_HOP | {
    b"host",
    b"cookie",
    b"authorization",
    b"x-csrf-token",
    b"traceparent",
    b"x-request-id",
    b"content-length",
}
# The gateway's server sends its own Date and Server: the service's would be duplicates.
_DROP_RESPONSE = HOP_BY_HOP | {b"content-length", b"x-request-id", b"set-cookie", b"date", b"server"}
READ_WHOLE_MAX_BYTES = 256 * 1024
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

SIGNED_WEBHOOKS: frozenset[tuple[str, str]] = frozenset({("sync", "/v1/shipments/webhook")})
"""(service, path) of webhooks that partners sign (Standard Webhooks) instead of sending a token: a POST
there with a `webhook-signature` and no Authorization or session cookie is forwarded without a token,
and the service checks the signature itself (rate-limited per sending address)."""


def _connection_tokens(headers: Headers) -> frozenset[bytes]:
    """Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1). Names are lowercase."""
    names: set[bytes] = set()
    for key, value in headers:
        if key == b"connection":
            names.update(token.strip().lower() for token in value.split(b","))
    return frozenset(names)


def traceparent_for(incoming: str | None) -> str:
    """Continue the caller's W3C trace with a new span id, or start a trace."""
    match = _TRACEPARENT.match(incoming) if incoming else None
    if match is None or match.group(1) == "0" * 32:
        ids = secrets.token_hex(24)  # one read of the OS's randomness for the trace and the span
        return f"00-{ids[:32]}-{ids[32:]}-{match.group(3) if match else '01'}"
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"


def upstream_headers(request: Request, token: str | None, prefix: bytes) -> tuple[Headers, bool, bool]:
    """The headers to send upstream; whether there is a body; whether it goes chunked (no length).
    `token` is None for a signed webhook (the service checks the signature); `prefix` is the path the
    gateway strips (X-Forwarded-Prefix), e.g. b"/api/customers"."""
    raw: Headers = request.scope["headers"]  # ASGI: names lowercased
    drop = _DROP_REQUEST
    if any(key == b"connection" for key, _ in raw):
        drop = drop | _connection_tokens(raw)
    headers: Headers = []
    found: dict[bytes, bytes] = {}
    for key, value in raw:
        if key in drop or key.startswith(b"x-forwarded-"):
            found.setdefault(key, value)
        else:
            headers.append((key, value))
    client = request.scope.get("client")
    ip = client[0].encode("latin-1") if client else b"unknown"
    previous = found.get(b"x-forwarded-for")
    incoming_trace = found.get(b"traceparent")
    if token is not None:
        headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
    headers += [
        (b"x-forwarded-for", previous + b", " + ip if previous else ip),
        (b"x-forwarded-proto", found.get(b"x-forwarded-proto") or request.scope["scheme"].encode("latin-1")),
        (b"x-forwarded-host", found.get(b"x-forwarded-host") or found.get(b"host", b"")),
        *([(b"x-forwarded-prefix", prefix)] if prefix else []),
        (
            b"traceparent",
            traceparent_for(incoming_trace.decode("latin-1") if incoming_trace else None).encode(),
        ),
    ]
    request_id = request_id_var.get()
    if request_id:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    elif b"x-request-id" in found:
        headers.append((b"x-request-id", found[b"x-request-id"]))
    length = found.get(b"content-length")
    if length is not None:
        headers.append((b"content-length", length))
        return headers, length != b"0", False
    chunked = b"transfer-encoding" in found
    return headers, chunked, chunked


def _signed_webhook(request: Request, gateway: Gateway, service: str) -> bool:
    if request.scope["method"] != "POST" or "webhook-signature" not in request.headers:
        return False
    if "authorization" in request.headers or gateway.settings.session_cookie_name in request.cookies:
        return False
    target = _target(request, service)
    return target is not None and (service, target.partition(b"?")[0].decode("latin-1")) in SIGNED_WEBHOOKS


def _target(request: Request, service: str) -> bytes | None:
    """The raw path under /api/<service> and the raw query, as the caller sent them (None when the
    service segment was sent percent-encoded: no service is routed at such a name)."""
    scope = request.scope
    # httpx's ASGITransport puts the query in raw_path too; a path itself never holds "?".
    raw_path: bytes = (scope.get("raw_path") or scope["path"].encode("utf-8")).partition(b"?")[0]
    prefix = b"/api/" + service.encode("latin-1") + b"/"
    at = raw_path.find(prefix)
    if at < 0:
        return None
    target = raw_path[at + len(prefix) - 1 :]
    query: bytes = scope.get("query_string", b"")
    return target + b"?" + query if query else target


def public_location(location: bytes, upstream_url: Upstream, prefix: bytes) -> bytes:
    """A redirect's target as the caller can follow it: a location on the service itself (its own
    address, as it builds one from the Host the gateway sent, or a path on its root) becomes the same
    path under the gateway's `/api/<service>`; any other location is left as it is. Without this, a
    service's redirect (a trailing slash, say) sent callers to an address behind the gateway, which
    they cannot reach and should not learn."""
    origin = upstream_url.scheme.encode("ascii") + b"://" + upstream_url.host_header
    if location[: len(origin)].lower() == origin.lower() and location[len(origin) : len(origin) + 1] in (
        b"",
        b"/",
        b"?",
    ):
        path = location[len(origin) :]
    elif location.startswith(b"/") and not location.startswith(b"//"):
        path = location
    else:
        return location
    if upstream_url.prefix and (
        path == upstream_url.prefix
        or path.startswith((upstream_url.prefix + b"/", upstream_url.prefix + b"?"))
    ):
        path = path[len(upstream_url.prefix) :]
    return prefix + (path if path.startswith(b"/") else b"/" + path)


def _response_headers(
    upstream: UpstreamResponse, extra: Headers, upstream_url: Upstream, prefix: bytes
) -> tuple[Headers, int | None]:
    """The upstream's headers to pass on (names lowercase, a redirect's location as the caller reaches
    it) and its Content-Length."""
    drop = _DROP_RESPONSE
    length: int | None = None
    for key, value in upstream.headers:
        if key == b"connection":
            drop = drop | _connection_tokens(upstream.headers)
        elif key == b"content-length":
            length = int(value) if value.isdigit() else None
    headers = [
        (key, public_location(value, upstream_url, prefix) if key == b"location" else value)
        for key, value in upstream.headers
        if key not in drop
    ]
    headers += extra
    return headers, length


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def _stream(upstream: UpstreamResponse, timeout: float) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.iter_body(timeout):
            yield chunk
    finally:
        await upstream.aclose()


class _WholeResponse(Response):
    """A response with headers already encoded (Response.__init__ would build and then discard some)."""

    def __init__(self, status_code: int, raw_headers: Headers, body: bytes) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = raw_headers


PROXIED_BODY_LIMIT = 2 * 1024**3
"""The largest upload any service takes (product import); each service enforces its own."""


async def forward(request: Request) -> Response:
    """Proxy one request to the service named by the path's second segment."""
    # Uploads stream through to the service, which enforces its own limits; the gateway's own body limit
    # (for its own routes) does not apply to a proxied request that took the full stack (a root_path).
    raise_body_limit(request, PROXIED_BODY_LIMIT)
    gateway: Gateway = request.app.state.gateway
    service = request.path_params["service"]
    token: str | None = None
    try:
        if _signed_webhook(request, gateway, service):
            # The service authenticates the sender by its signature; the rate limit is the address's.
            decision = await limit_caller(gateway, f"webhook:{client_ip(request)}")
        else:
            # The caller first: nothing about what lies behind the gateway is told to a caller without one.
            caller, token = await authenticate_request(gateway, request)
            request.state.caller = caller
            decision = await limit_caller(gateway, caller.subject)
    except ServiceError as exc:
        return problem_response(request, exc.status, exc.title, exc.detail, headers=exc.headers)
    upstream_url = gateway.upstreams.get(service)
    target = _target(request, service) if upstream_url is not None else None
    if upstream_url is None or target is None:
        return problem_response(request, 404, "Not Found", f"No service is routed at /api/{service}.")
    prefix = b"/api/" + service.encode("latin-1")
    return await relay(request, service, upstream_url, target, token, prefix, decision.raw_headers())


async def relay(
    request: Request,
    service: str,
    upstream_url: Upstream,
    target: bytes,
    token: str | None,
    prefix: bytes,
    extra_headers: Headers,
) -> Response:
    """Send the request to `target` (raw path and query) on the service with the caller's token, and
    answer with the service's response."""
    gateway: Gateway = request.app.state.gateway
    headers, has_body, chunked = upstream_headers(request, token, prefix)
    method = request.scope["method"]
    read_timeout = gateway.upstream.timeouts.read
    try:
        upstream = await gateway.upstream.send(
            upstream_url,
            method.encode("ascii"),
            target,
            headers,
            _body(request) if has_body else None,
            chunked=chunked,
        )
    except UpstreamTimeout as exc:
        log.warning("upstream %s timed out: %s", service, exc)
        return problem_response(
            request, 504, "Gateway Timeout", f"The {service} service did not answer in time."
        )
    except UpstreamError as exc:
        log.warning("upstream %s unreachable: %s", service, exc)
        return problem_response(request, 502, "Bad Gateway", f"The {service} service is not reachable.")
    try:
        response_headers, length = _response_headers(upstream, extra_headers, upstream_url, prefix)
        return await _answer(request, service, upstream, response_headers, length, read_timeout)
    except BaseException:
        await upstream.aclose()  # whatever happens, the pooled connection's slot is given back
        raise


async def _answer(
    request: Request,
    service: str,
    upstream: UpstreamResponse,
    response_headers: Headers,
    length: int | None,
    read_timeout: float,
) -> Response:
    """The client's response to the service's answer: read whole when small, streamed otherwise."""
    if request.scope["method"] == "HEAD":
        await upstream.aclose()
        if length is not None:
            response_headers.append((b"content-length", str(length).encode()))
        return _WholeResponse(upstream.status, response_headers, b"")
    if length is not None and length <= READ_WHOLE_MAX_BYTES:
        try:
            body = await upstream.read(read_timeout)
        except UpstreamTimeout:
            return problem_response(
                request, 504, "Gateway Timeout", f"The {service} service did not answer in time."
            )
        except UpstreamError:
            return problem_response(
                request, 502, "Bad Gateway", f"The {service} service broke off its answer."
            )
        finally:
            await upstream.aclose()
        response_headers.append((b"content-length", str(len(body)).encode()))
        return _WholeResponse(upstream.status, response_headers, body)
    streaming = StreamingResponse(
        _stream(upstream, read_timeout),
        status_code=upstream.status,
        background=BackgroundTask(upstream.aclose),
    )
    streaming.raw_headers = response_headers
    return streaming


PROXY_ROUTE = Route("/api/{service}/{path:path}", forward, methods=METHODS, name="proxy")
_METHOD_SET = frozenset(METHODS)
_PROXY_PATH = re.compile(r"^/api/([^/]+)/(.*)$", re.DOTALL)


async def _proxy_app(scope: Scope, receive: Receive, send: Send) -> None:
    response = await forward(Request(scope, receive))
    await response(scope, receive, send)


class ProxyFastPath:
    """ASGI middleware, outermost of the app's own: a proxied call goes straight to `forward` under
    the request-id and metrics middleware, past FastAPI's exception, dependency and routing layers (in
    bench/ those cost as much CPU as the proxying). Everything else, and a proxied path under a
    root_path, takes the app's full stack, where the same route serves it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.proxied = RequestIdMiddleware(MetricsMiddleware(_proxy_app))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            match = _PROXY_PATH.match(scope["path"])
            if match is not None and scope["method"] in _METHOD_SET:
                scope["route"] = PROXY_ROUTE
                scope["endpoint"] = forward
                scope["path_params"] = {"service": match[1], "path": match[2]}
                await self.proxied(scope, receive, send)
                return
        await self.app(scope, receive, send)
