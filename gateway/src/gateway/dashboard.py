"""/dashboard: analytics-service's dashboard, for a signed-in browser (or a Bearer caller) holding
analytics:read (analysts and admins). The page and its assets are forwarded like /api/analytics/…,
with the session turned into a Bearer token; a browser without a session is sent to the sign-in page.
Two assets are public, which the sign-in page loads ahead of the dashboard: the plotly.js it draws with
(the library as the `plotly` package ships it) and warmup.js, which draws sample charts off-screen."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.auth import authenticate_request
from gateway.limits import client_ip, limit_caller
from gateway.proxy import relay
from gateway.runtime import Gateway
from servicekit.errors import ServiceError, Unauthorized, problem_response

DASHBOARD_PATH = "/dashboard"
DASHBOARD_SCOPE = "analytics:read"
DASHBOARD_SERVICE = "analytics"
PLOTLY_PATH = f"{DASHBOARD_PATH}/assets/plotly.min.js"
WARMUP_PATH = f"{DASHBOARD_PATH}/assets/warmup.js"
PUBLIC_ASSET_PATHS = frozenset({PLOTLY_PATH, WARMUP_PATH})


def _raw_target(request: Request) -> bytes:
    """The path and query as the caller sent them (forwarded unchanged, never re-encoded)."""
    scope = request.scope
    path: bytes = (scope.get("raw_path") or scope["path"].encode("utf-8")).partition(b"?")[0]
    query: bytes = scope.get("query_string", b"")
    return path + b"?" + query if query else path


def _login_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


async def dashboard(request: Request) -> Response:
    """The dashboard page or one of its assets, from analytics-service."""
    gateway: Gateway = request.app.state.gateway
    try:
        caller, token = await authenticate_request(gateway, request)
    except Unauthorized as exc:
        if request.url.path == DASHBOARD_PATH and "authorization" not in request.headers:
            return _login_redirect(request)  # a browser that is not signed in (or whose session ended)
        return problem_response(request, exc.status, exc.title, exc.detail, headers=exc.headers)
    except ServiceError as exc:
        return problem_response(request, exc.status, exc.title, exc.detail, headers=exc.headers)
    request.state.caller = caller
    if not caller.has(DASHBOARD_SCOPE):
        return problem_response(
            request,
            403,
            "Forbidden",
            f"The dashboard needs the scope {DASHBOARD_SCOPE} (analysts and admins).",
        )
    try:
        decision = await limit_caller(gateway, caller.subject)
    except ServiceError as exc:
        return problem_response(request, exc.status, exc.title, exc.detail, headers=exc.headers)
    upstream_url = gateway.upstreams[DASHBOARD_SERVICE]
    return await relay(
        request, DASHBOARD_SERVICE, upstream_url, _raw_target(request), token, b"", decision.raw_headers()
    )


async def public_asset(request: Request) -> Response:
    """A public asset, to anyone: forwarded with no token, limited per client address like a caller."""
    gateway: Gateway = request.app.state.gateway
    try:
        decision = await limit_caller(gateway, f"ip:{client_ip(request)}")
    except ServiceError as exc:
        return problem_response(request, exc.status, exc.title, exc.detail, headers=exc.headers)
    upstream_url = gateway.upstreams[DASHBOARD_SERVICE]
    return await relay(
        request, DASHBOARD_SERVICE, upstream_url, _raw_target(request), None, b"", decision.raw_headers()
    )


def dashboard_routes() -> list[BaseRoute]:
    """/dashboard and everything under it (its script, style and plotly.js; two assets public)."""
    return [
        # before the catch-all below, which would ask for a session
        *(
            Route(path, public_asset, methods=["GET", "HEAD"], include_in_schema=False)
            for path in sorted(PUBLIC_ASSET_PATHS)
        ),
        Route(DASHBOARD_PATH, dashboard, methods=["GET", "HEAD"], include_in_schema=False),
        Route(f"{DASHBOARD_PATH}/{{path:path}}", dashboard, methods=["GET", "HEAD"], include_in_schema=False),
    ]
