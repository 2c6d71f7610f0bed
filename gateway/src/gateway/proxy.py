"""Routing: /api/<service>/<path> to the service through one pooled httpx client.

The gateway verifies the caller (and applies its rate limit) before forwarding; the service verifies
the token again. Small responses are read whole, bigger or unsized ones are streamed; request bodies
are always streamed.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.auth import resolve_caller
from gateway.limits import client_ip, limit_caller
from gateway.runtime import Gateway
from servicekit.errors import ServiceError, problem_response
from servicekit.logging import request_id_var

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Not forwarded upstream: hop-by-hop, the host (httpx sets the upstream's), cookies (the session is
# turned into a Bearer token; services never see the gateway's cookies) and headers the gateway sets.
_DROP_REQUEST = HOP_BY_HOP | {"host", "cookie", "authorization", "x-csrf-token", "traceparent"}
_DROP_RESPONSE = HOP_BY_HOP | {"content-length", "x-request-id", "set-cookie"}
READ_WHOLE_MAX_BYTES = 256 * 1024
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _connection_tokens(headers: httpx.Headers | list[tuple[str, str]]) -> set[str]:
    """Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1)."""
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers
    names: set[str] = set()
    for key, value in items:
        if key.lower() == "connection":
            names.update(token.strip().lower() for token in value.split(","))
    return names


def traceparent_for(incoming: str | None) -> str:
    """Continue the caller's W3C trace with a new span id, or start a trace."""
    match = _TRACEPARENT.match(incoming or "")
    trace_id = match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)
    flags = match.group(3) if match else "01"
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def upstream_headers(request: Request, token: str) -> list[tuple[str, str]]:
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
    drop = _DROP_REQUEST | _connection_tokens(raw)
    headers = [(k, v) for k, v in raw if k.lower() not in drop and not k.lower().startswith("x-forwarded-")]
    ip = client_ip(request)
    previous = request.headers.get("x-forwarded-for")
    headers += [
        ("authorization", f"Bearer {token}"),
        ("x-forwarded-for", f"{previous}, {ip}" if previous else ip),
        ("x-forwarded-proto", request.headers.get("x-forwarded-proto") or request.url.scheme),
        ("x-forwarded-host", request.headers.get("x-forwarded-host") or request.headers.get("host", "")),
        ("x-forwarded-prefix", "/".join(request.url.path.split("/")[:3])),
        ("traceparent", traceparent_for(request.headers.get("traceparent"))),
    ]
    request_id = request_id_var.get()
    if request_id:
        headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"] + [("x-request-id", request_id)]
    return headers


def _response_headers(upstream: httpx.Response) -> list[tuple[str, str]]:
    drop = _DROP_RESPONSE | _connection_tokens(upstream.headers)
    return [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in drop]


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def _raw(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body as sent (still content-encoded), straight from the transport's stream."""
    stream = upstream.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    async for chunk in stream:
        yield chunk


def _has_body(request: Request) -> bool:
    if "transfer-encoding" in request.headers:
        return True
    length = request.headers.get("content-length")
    return length is not None and length != "0"


async def forward(request: Request) -> Response:
    """Proxy one request to the service named by the path's second segment."""
    gateway: Gateway = request.app.state.gateway
    service = request.path_params["service"]
    base = gateway.settings.upstreams.get(service)
    if base is None:
        return problem_response(request, 404, "Not Found", f"No service is routed at /api/{service}.")
    try:
        caller, token = await resolve_caller(gateway, request)
        request.state.caller = caller
        decision = await limit_caller(gateway, caller.subject)
    except ServiceError as exc:
        return problem_response(request, exc.status, exc.title, exc.detail, headers=exc.headers)
    path = request.path_params["path"]
    url = f"{base}/{path}"
    if request.url.query:
        url = f"{url}?{request.url.query}"
    outgoing = httpx.Request(
        request.method,
        url,
        headers=upstream_headers(request, token),
        content=_body(request) if _has_body(request) else None,
        extensions={"timeout": gateway.timeouts},
    )
    try:
        upstream = await gateway.transport.handle_async_request(outgoing)
    except httpx.TimeoutException as exc:
        log.warning("upstream %s timed out: %s", service, type(exc).__name__)
        return problem_response(
            request, 504, "Gateway Timeout", f"The {service} service did not answer in time."
        )
    except httpx.HTTPError as exc:
        log.warning("upstream %s unreachable: %s", service, exc)
        return problem_response(request, 502, "Bad Gateway", f"The {service} service is not reachable.")
    response_headers = _response_headers(upstream)
    response_headers += list(decision.headers().items())
    length = upstream.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) <= READ_WHOLE_MAX_BYTES:
        try:
            body = b"".join([chunk async for chunk in _raw(upstream)])
        except httpx.TimeoutException:
            return problem_response(
                request, 504, "Gateway Timeout", f"The {service} service did not answer in time."
            )
        except httpx.HTTPError:
            return problem_response(
                request, 502, "Bad Gateway", f"The {service} service broke off its answer."
            )
        finally:
            await upstream.aclose()
        response = Response(body, status_code=upstream.status_code)
        response.raw_headers = [
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers),
            (b"content-length", str(len(body)).encode()),
        ]
        return response
    streaming = StreamingResponse(
        _raw(upstream), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
    )
    streaming.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers]
    return streaming


def proxy_route() -> Route:
    return Route("/api/{service}/{path:path}", forward, methods=METHODS, name="proxy")
