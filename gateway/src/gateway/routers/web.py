"""Browser login for the dashboard: /login sets an HttpOnly, SameSite=Strict session cookie; /logout."""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway import audit
from gateway.auth import check_csrf, session_token
from gateway.dashboard import DASHBOARD_PATH, PLOTLY_PATH, WARMUP_PATH
from gateway.limits import client_ip, limit_auth_ip
from gateway.login import authenticate_person
from gateway.roles import scopes_for
from gateway.runtime import GatewayDep
from gateway.security import hash_secret
from gateway.sessions import create_session, end_session
from servicekit.errors import PROBLEM_JSON, Unauthorized

router = APIRouter(tags=["browser"])

CSP = "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ecom: sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}}
label{{display:block;margin:.6rem 0}}
input{{width:100%;padding:.4rem}}.error{{color:#b00020}}</style>{warm}</head>
<body><h1>Sign in</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label>Email <input name="email" type="email" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label>One-time code (if enrolled) <input name="otp" autocomplete="one-time-code" inputmode="numeric"></label>
<button type="submit">Sign in</button></form></body></html>"""


def _safe_next(value: str | None) -> str:
    """Only a local path: an open redirect would hand the session to another site's phishing page."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/docs"


# On the way to the dashboard, the page loads the plotly.js the dashboard draws with (public, at the same
# URL, fresh for five minutes) and warmup.js, which draws sample charts off-screen with it and runs it a
# second time so the browser writes its code cache: `async` and `defer`, so the form is shown and usable
# at once, and the browser has the 4.8 MB library fetched and compiled, its drawing code included, while
# the person types, where the dashboard would wait for it.
_WARM_DASHBOARD = (
    f'<script async id="plotly-js" src="{PLOTLY_PATH}"></script><script defer src="{WARMUP_PATH}"></script>'
)


def _page(*, error: str | None = None, next_url: str = "/docs", status: int = 200) -> HTMLResponse:
    error_html = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    warm = _WARM_DASHBOARD if urlsplit(next_url).path == DASHBOARD_PATH else ""
    return HTMLResponse(
        _PAGE.format(error=error_html, next=html.escape(next_url, quote=True), warm=warm),
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": CSP,
        },
    )


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """No icon (204), so a browser opening the sign-in page or the dashboard logs no failed request."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/login", response_class=HTMLResponse)
async def login_page(next: str | None = None) -> HTMLResponse:
    """The browser sign-in page (then back to `next`, the API docs by default)."""
    return _page(next_url=_safe_next(next))


_LOGIN_PAGE = {"text/html": {"schema": {"type": "string"}}}
LOGIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: {"description": "Signed in: the session and CSRF cookies are set, redirect to `next`"},
    401: {
        "description": "The sign-in page again, saying the credentials are not correct",
        "content": _LOGIN_PAGE,
    },
    429: {
        "description": "Too many attempts: the sign-in page saying so (an account locked), or a problem "
        "(too many requests from this address)",
        "content": {**_LOGIN_PAGE, PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
}


@router.post(
    "/login", response_class=HTMLResponse, responses=LOGIN_RESPONSES, dependencies=[Depends(limit_auth_ip)]
)
async def login(
    request: Request,
    gateway: GatewayDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=512)],
    otp: Annotated[str | None, Form(max_length=32)] = None,
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """Check the credentials and set the session cookie (HttpOnly, SameSite=Strict) and a CSRF cookie."""
    settings = gateway.settings
    target = _safe_next(next)
    new_session = None
    async with gateway.database.session() as session:
        result = await authenticate_person(
            session,
            settings,
            gateway.box,
            email=email,
            password=password,
            otp=otp or None,
            ip=client_ip(request),
        )
        if result.user is not None:
            new_session = await create_session(
                session,
                user_id=result.user.id,
                scope=" ".join(scopes_for(result.user.roles)),
                ttl=settings.session_ttl_seconds,
            )
            await audit.record(
                session,
                "session.create",
                actor=result.user.email,
                target=result.user.id,
                ip=client_ip(request),
            )
    if new_session is None:
        status = 429 if result.retry_after else 401
        return _page(error=result.error, next_url=target, status=status)
    response = RedirectResponse(target, status_code=303)
    common = {
        "max_age": settings.session_ttl_seconds,
        "secure": settings.cookie_secure,
        "samesite": "strict",
        "path": "/",
    }
    response.set_cookie(settings.session_cookie_name, new_session.cookie_value, httponly=True, **common)  # type: ignore[arg-type]
    # Readable by the dashboard's script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(settings.csrf_cookie_name, new_session.csrf_token, httponly=False, **common)  # type: ignore[arg-type]
    return response


@router.post("/logout", status_code=303, responses={401: {}, 403: {}})
async def logout(request: Request, gateway: GatewayDep) -> Response:
    """End the browser session (needs the X-CSRF-Token header) and clear its cookies."""
    settings = gateway.settings
    cookie = request.cookies.get(settings.session_cookie_name)
    if not cookie:
        raise Unauthorized("There is no session to end.")
    entry = await session_token(gateway, cookie)
    if entry is None:
        raise Unauthorized("The session has already ended.")
    check_csrf(request, entry.csrf_token)
    async with gateway.database.session() as session:
        await end_session(session, cookie)
        await audit.record(session, "session.end", target=entry.caller.subject, ip=client_ip(request))
    gateway.session_tokens.pop(hash_secret(cookie), None)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        settings.session_cookie_name,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(
        settings.csrf_cookie_name, path="/", secure=settings.cookie_secure, samesite="strict"
    )
    return response
