"""Who is calling the gateway: a Bearer access token, or a browser session cookie (with CSRF check)."""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from gateway.limits import limit_refused_ip
from gateway.runtime import PUBLIC_CLIENT_ID, Gateway, GatewayDep, SessionToken
from gateway.security import hash_secret
from gateway.sessions import find_session
from gateway.tokens import mint_access_token
from servicekit.auth import Caller, bearer_scheme
from servicekit.errors import Forbidden, Unauthorized

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
# A session's access token is re-minted this long before it expires.
SESSION_TOKEN_MARGIN_SECONDS = 60


async def verify_bearer(gateway: Gateway, token: str) -> Caller:
    """The caller of a gateway-issued access token; Unauthorized when it is not valid, was revoked, or
    its user or client is disabled."""
    caller = gateway.callers.get(token)
    if caller is None or caller.claims.get("exp", 0) <= time.time():
        caller = await gateway.verifier.verify(token)
        gateway.remember_caller(token, caller)
    if await gateway.principals.is_revoked(caller.token_id):
        raise Unauthorized("The token has been revoked.")
    if not await gateway.principals.is_active(caller.subject):
        raise Unauthorized("The token's user or client is disabled.")
    return caller


async def session_token(gateway: Gateway, cookie_value: str) -> SessionToken | None:
    """The access token standing in for a browser session (minted and cached), or None."""
    settings = gateway.settings
    key = hash_secret(cookie_value)
    now = time.time()
    cached = gateway.session_tokens.get(key)
    if (
        cached is not None
        and cached.expires_at - SESSION_TOKEN_MARGIN_SECONDS > now
        and now - cached.checked_at < settings.principal_cache_seconds
    ):
        return cached
    async with gateway.database.session() as db:
        row = await find_session(db, cookie_value)
    if row is None:
        gateway.session_tokens.pop(key, None)
        return None
    if cached is not None and cached.expires_at - SESSION_TOKEN_MARGIN_SECONDS > now:
        cached.checked_at = now
        return cached
    ttl = int(min(settings.access_token_ttl_seconds, max(1, row.expires_at - now)))
    issued = await mint_access_token(
        gateway.keyring,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        subject=row.user_id,
        scopes=row.scope.split(),
        client_id=PUBLIC_CLIENT_ID,
        ttl=ttl,
    )
    caller = await gateway.verifier.verify(issued.token)
    entry = SessionToken(issued.token, caller, row.csrf_token, now + ttl, now)
    if len(gateway.session_tokens) > 10_000:
        gateway.session_tokens.clear()
    gateway.session_tokens[key] = entry
    return entry


def check_csrf(request: Request, expected: str) -> None:
    """State-changing requests authenticated by cookie must echo the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, expected):
        raise Forbidden(f"A cookie-authenticated {request.method} needs the {CSRF_HEADER} header.")


async def resolve_caller(gateway: Gateway, request: Request) -> tuple[Caller, str]:
    """The caller and the Bearer token to forward upstream."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("A Bearer token is required.")
        token = token.strip()
        return await verify_bearer(gateway, token), token
    cookie = request.cookies.get(gateway.settings.session_cookie_name)
    if cookie:
        entry = await session_token(gateway, cookie)
        if entry is None:
            raise Unauthorized("The session has ended; log in again.")
        check_csrf(request, entry.csrf_token)
        if not await gateway.principals.is_active(entry.caller.subject):
            raise Unauthorized("The account is disabled.")
        return entry.caller, entry.token
    raise Unauthorized("A Bearer token or a session cookie is required.")


async def authenticate_request(gateway: Gateway, request: Request) -> tuple[Caller, str]:
    """`resolve_caller`, with refusals counted per address (429 once an address keeps sending missing
    or invalid tokens)."""
    try:
        return await resolve_caller(gateway, request)
    except Unauthorized:
        await limit_refused_ip(gateway, request)
        raise


async def gate_authenticate(request: Request) -> Caller:
    """The servicekit AuthenticationGate's authenticator for the gateway's own protected routes."""
    caller, _token = await authenticate_request(request.app.state.gateway, request)
    return caller


PROTECTED_PREFIXES = ("/admin", "/v1/")
"""The gateway's own routes that need a caller; /api/ is authenticated by the proxy itself, and
tokens, login, discovery, probes and docs are public."""


def is_public(path: str) -> bool:
    return not path.startswith(PROTECTED_PREFIXES)


async def current_caller(
    request: Request,
    gateway: GatewayDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The verified caller of a gateway route (401 problem+json otherwise)."""
    checked: Caller | None = request.scope.get("state", {}).get("caller")
    if checked is not None:
        return checked  # the AuthenticationGate verified it before routing
    caller, _token = await authenticate_request(gateway, request)
    request.state.caller = caller
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require_scope(scope: str) -> object:
    """A dependency: 403 unless the caller holds `scope` (admin holds every scope)."""

    async def check(caller: CurrentCaller) -> Caller:
        if not caller.has(scope):
            raise Forbidden(f"This requires the scope: {scope}.")
        return caller

    return Depends(check)


AdminCaller = Annotated[Caller, require_scope("admin")]
