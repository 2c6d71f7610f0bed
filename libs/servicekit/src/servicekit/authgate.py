"""Authentication before routing: a request to anything but a public path needs a valid token before
any route, path parameter, body or resource is looked at.

Without it, FastAPI solves a route's dependencies in declaration order, so a `get_x_or_404` or a body
validation could answer 404 or 422 to a caller without a token, and anyone who can reach a service
could probe which ids exist. Here every protected request is refused with the same 401 whatever it
names; the verified caller is kept on `request.state.caller`, where `require` finds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.auth import Caller, TokenVerifier
from servicekit.errors import ServiceError, Unauthorized, problem_response

PUBLIC_PATHS: frozenset[str] = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json"}
)
"""What every service answers without a token: probes, metrics and the API docs."""

PUBLIC_PREFIXES: tuple[str, ...] = ("/docs/assets/",)
"""The Swagger UI's static files."""

Authenticator = Callable[[Request], Awaitable[Caller]]

BODY_READ_KEY = "servicekit.authgate.body"


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The request body, for an authenticator that must see it (a signature over the body): read at
    most `max_bytes` (413 past it) and kept, so the gate hands the same bytes on to the app."""
    kept: bytes | None = request.scope.get(BODY_READ_KEY)
    if kept is not None:
        return kept
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ServiceError(
                f"The request body is larger than {max_bytes} bytes.", status=413, title="Content Too Large"
            )
        chunks.append(chunk)
    body = b"".join(chunks)
    request.scope[BODY_READ_KEY] = body
    return body


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def bearer_token(request: Request) -> str:
    """The Bearer token of the Authorization header; Unauthorized when there is none."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A Bearer token is required.")
    return token


async def verify_bearer(request: Request) -> Caller:
    """The default authenticator: the Bearer token checked by the app's `token_verifier`."""
    token = bearer_token(request)
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(token)


def default_is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class AuthenticationGate:
    """Pure-ASGI middleware: 401 problem+json for a protected path unless `authenticate` accepts the
    request; the caller goes to `scope["state"]["caller"]` (`request.state.caller`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        is_public: Callable[[str], bool] = default_is_public,
        authenticate: Authenticator = verify_bearer,
    ) -> None:
        self.app = app
        self.is_public = is_public
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            caller = await self.authenticate(request)
        except ServiceError as exc:
            response = problem_response(
                request, exc.status, exc.title, exc.detail, headers=exc.headers, extra=exc.extra
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        body: bytes | None = scope.get(BODY_READ_KEY)
        await self.app(scope, receive if body is None else _replaying(body, receive), send)


def public_paths(paths: Collection[str], prefixes: tuple[str, ...] = ()) -> Callable[[str], bool]:
    """An `is_public` predicate: the default public paths plus these."""
    extra = frozenset(paths)

    def is_public(path: str) -> bool:
        return default_is_public(path) or path in extra or (bool(prefixes) and path.startswith(prefixes))

    return is_public
