"""JWT verification against the gateway's JWKS (RS256 only) and a FastAPI dependency for scopes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from jose import jwt
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError

from servicekit.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ["RS256"]

VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Caller:
    """The verified identity behind a request."""

    subject: str
    scopes: frozenset[str]
    client_id: str | None = None
    token_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class KeySource(Protocol):
    async def get(self, kid: str) -> dict[str, Any] | None: ...


class StaticKeys:
    """A fixed JWKS (tests, or keys configured out of band)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {key["kid"]: key for key in jwks.get("keys", []) if "kid" in key}

    async def get(self, kid: str) -> dict[str, Any] | None:
        return self._keys.get(kid)


class JWKSClient:
    """Fetches and caches a JWKS over HTTP; an unknown `kid` triggers a refetch, at most every
    `min_refetch_interval` seconds so a flood of bad tokens cannot hammer the gateway. The interval runs
    from the last refetch an unknown `kid` caused, not from any fetch: a key the gateway rotates in just
    after a fetch (at the service's start, or the cache's) is fetched for its first token."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300,
        min_refetch_interval: float = 10,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refetch_interval = min_refetch_interval
        self._client = client
        self._owns_client = False
        self._timeout = timeout
        self._keys: dict[str, dict[str, Any]] = {}
        # monotonic() counts from boot: starting at 0.0 would make a host booted moments ago look freshly
        # fetched and refuse every token until min_refetch_interval had passed.
        self._fetched_at = -math.inf
        self._missed_at = -math.inf  # when an unknown kid last caused a refetch
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> dict[str, Any] | None:
        now = time.monotonic()
        if kid in self._keys and now - self._fetched_at < self.cache_seconds:
            return self._keys[kid]
        async with self._lock:
            now = time.monotonic()
            if now - self._fetched_at >= self.cache_seconds:
                await self._refresh()
            elif kid not in self._keys and now - self._missed_at >= self.min_refetch_interval:
                self._missed_at = now
                await self._refresh()
        return self._keys.get(kid)

    async def warm(self) -> None:
        """Make the HTTP client and fetch the keys ahead of the first token (at the app's start), so the
        first request does not pay for them (~200 ms with the revocation list's); quiet if the gateway is
        not up yet: the first token then fetches them as before."""
        async with self._lock:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, AttributeError):
                await self._fetch()  # makes the client first, even when the gateway cannot be reached

    async def _fetch(self) -> None:
        if self._client is None:
            self._client = kept_client(self._timeout)
            self._owns_client = True
        response = await self._client.get(self.url, timeout=self._timeout)
        response.raise_for_status()
        keys = response.json().get("keys", [])
        self._keys = {key["kid"]: key for key in keys if "kid" in key}
        self._fetched_at = time.monotonic()

    async def _refresh(self) -> None:
        try:
            await self._fetch()
        except (httpx.HTTPError, ValueError) as exc:
            # Keep serving the keys we had; a token with an unknown kid is refused meanwhile.
            log.warning("JWKS fetch from %s failed: %s", self.url, exc)
            self._fetched_at = time.monotonic() - self.cache_seconds + self.min_refetch_interval

    async def aclose(self) -> None:
        """Close the HTTP client this made for itself (one given to it is its owner's to close)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None
            self._owns_client = False


def kept_client(timeout: float) -> httpx.AsyncClient:
    """An HTTP client kept for the fetches of one list. A client made for each fetch cost 60-150 ms
    here (most of it building the TLS context, even for an http:// URL), and the revocation list is
    fetched on a request's path whenever it is 5 s old: the first call after a pause paid that. Pooled
    connections are dropped after 2 s idle, below the gateway's keep-alive (uvicorn's 5 s), so a fetch
    never lands on a connection the gateway is closing."""
    return httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(keepalive_expiry=2.0))


class RevocationList:
    """Subjects (disabled users and clients) and token ids the gateway has revoked, fetched over HTTP
    like the JWKS and cached for `cache_seconds`: a service called directly refuses such a token within
    that time instead of until the token expires. If a fetch fails, the last known list stays in force."""

    def __init__(self, url: str, *, cache_seconds: float = 5.0, timeout: float = 2.0) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self._timeout = timeout
        self._subjects: frozenset[str] = frozenset()
        self._token_ids: frozenset[str] = frozenset()
        self._fetched_at = -math.inf
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def is_revoked(self, subject: str, token_id: str | None) -> bool:
        if time.monotonic() - self._fetched_at >= self.cache_seconds:
            async with self._lock:
                if time.monotonic() - self._fetched_at >= self.cache_seconds:
                    await self._refresh()
        return subject in self._subjects or (token_id is not None and token_id in self._token_ids)

    async def warm(self) -> None:
        """Make the HTTP client and fetch the list ahead of the first token (see `JWKSClient.warm`)."""
        async with self._lock:
            with contextlib.suppress(httpx.HTTPError, ValueError, AttributeError):
                await self._fetch()  # makes the client first, even when the gateway cannot be reached

    async def _fetch(self) -> None:
        if self._client is None:
            self._client = kept_client(self._timeout)
        response = await self._client.get(self.url)
        response.raise_for_status()
        body = response.json()
        self._subjects = frozenset(str(s) for s in body.get("subjects", []))
        self._token_ids = frozenset(str(t) for t in body.get("token_ids", []))
        self._fetched_at = time.monotonic()

    async def _refresh(self) -> None:
        try:
            await self._fetch()
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("revocation list fetch from %s failed: %s", self.url, exc)
        self._fetched_at = time.monotonic()

    async def aclose(self) -> None:
        """Close its HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway: int = 30,
        revocations: RevocationList | None = None,
        cache_size: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.revocations = revocations
        self.cache_size = cache_size
        # token -> (caller, kid, key, expiry): a token whose signature and claims were checked once is
        # not checked again until it expires, as long as its key is still published. The exact token
        # string is the key, so a cached entry can only ever answer for the same signed bytes.
        self._verified: OrderedDict[str, tuple[Caller, str, dict[str, Any], float]] = OrderedDict()

    async def warm(self) -> None:
        """Fetch the keys and the revocation list ahead of the first token, where they can be (at the
        app's start; quiet when the gateway is not up yet)."""
        for warm in (getattr(self.keys, "warm", None), getattr(self.revocations, "warm", None)):
            if warm is not None:
                await warm()

    async def aclose(self) -> None:
        """Close the HTTP clients of its key source and revocation list (at the app's shutdown)."""
        closers = [getattr(self.keys, "aclose", None), getattr(self.revocations, "aclose", None)]
        for close in closers:
            if close is not None:
                await close()

    async def verify(self, token: str) -> Caller:
        """Check signature (RS256 only), `kid`, `iss`, `aud`, `exp`, `nbf`, then revocation; raise
        Unauthorized. A token verified before is answered from a bounded cache until it expires, as long
        as its key is still published; revocation is checked on every call."""
        cached = self._verified.get(token)
        if cached is not None:
            caller, kid, key, expires = cached
            if time.time() <= expires:
                self._verified.move_to_end(token)
                if await self.keys.get(kid) == key:
                    await self._check_revoked(caller)
                    return caller
            self._verified.pop(token, None)
        caller, kid, key = await self._verify_signed(token)
        await self._check_revoked(caller)
        if self.cache_size > 0:
            self._verified[token] = (caller, kid, key, float(caller.claims["exp"]) + self.leeway)
            if len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return caller

    async def _check_revoked(self, caller: Caller) -> None:
        revocations = self.revocations
        if revocations is not None and await revocations.is_revoked(caller.subject, caller.token_id):
            raise Unauthorized("The token has been revoked.")

    async def _verify_signed(self, token: str) -> tuple[Caller, str, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except JWTError:
            raise Unauthorized("The token is malformed.") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise Unauthorized("The token's signing algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The token has no key id.")
        key = await self.keys.get(kid)
        if key is None:
            raise Unauthorized("The token was signed with an unknown key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALLOWED_ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_sub": True,
                    "require_aud": True,
                    "require_iss": True,
                    "leeway": self.leeway,
                },
            )
        except ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except JWTClaimsError as exc:
            raise Unauthorized(f"The token's claims are not valid: {exc}") from None
        except JWTError:
            raise Unauthorized("The token's signature is not valid.") from None
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        caller = Caller(
            subject=str(claims["sub"]),
            scopes=scopes,
            client_id=claims.get("client_id"),
            token_id=claims.get("jti"),
            claims=claims,
        )
        return caller, kid, key


bearer_scheme = HTTPBearer(auto_error=False, description="An access token from the gateway")


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def _verified_caller(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    # The app's AuthenticationGate verified the token before routing (servicekit.authgate).
    checked: Caller | None = request.scope.get("state", {}).get("caller")
    if checked is not None:
        return checked
    if credentials is None or not credentials.credentials:
        raise Unauthorized("A Bearer token is required.")
    verifier: TokenVerifier = request.app.state.token_verifier
    caller = await verifier.verify(credentials.credentials)
    request.state.caller = caller
    return caller


async def authenticate(request: Request, credentials: BearerCredentials) -> Caller:
    """The verified caller; 401 problem+json when the token is missing or not valid."""
    return await _verified_caller(request, credentials)


async def require(
    security_scopes: SecurityScopes, request: Request, credentials: BearerCredentials
) -> Caller:
    """Use as `Security(require, scopes=[...])`: 401 unless the token is valid, 403 unless the caller
    holds every scope. (It verifies the token itself rather than through `authenticate`: one dependency
    fewer to solve on every request.)"""
    caller = await _verified_caller(request, credentials)
    missing = [scope for scope in security_scopes.scopes if not caller.has(scope)]
    if missing:
        raise Forbidden(f"This requires the scope(s): {' '.join(missing)}.")
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]
