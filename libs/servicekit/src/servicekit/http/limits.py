"""Request bounds at the edge, as pure-ASGI middleware: body size (413) and JSON bodies (422).

- `BodyLimitMiddleware` refuses a body larger than the limit, whether the Content-Length says so up front
  or the bytes streamed say so later. The limit is the app's `max_body_bytes` setting; an upload route
  raises it for its own request with `raise_body_limit` (see `servicekit.http.uploads`).
- `JSONBodyMiddleware` refuses a NUL character in the path or query (400: no database text column can
  hold one), and reads a JSON body (`application/json` or `*+json`) before the route does and
  refuses one nested too deep, holding NaN/Infinity or a number that overflows (1e400), or an integer
  beyond 64 bits: Python's `json` would turn 1e400 into infinity, accept NaN, and raise RecursionError on
  deep nesting, and none of those may reach a handler. Accepted bodies are replayed to the app unchanged.
"""

from __future__ import annotations

import json
import re

from fastapi import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.bounds import MAX_JSON_DEPTH, JSONLimitError, check_json
from servicekit.errors import FieldError, problem_response

BODY_LIMIT_KEY = "servicekit.max_body_bytes"
_NUL_IN_QUERY = re.compile(rb"%00|\x00")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(HTTPException):
    """413: rendered as problem+json by the app's handler (a FastAPI HTTPException, so a route's body
    parsing passes it through instead of turning it into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"The request body is larger than {_size(limit)}.")


def _size(limit: int) -> str:
    if limit >= 2**20 and limit % 2**20 == 0:
        return f"{limit // 2**20} MiB"
    if limit >= 2**10 and limit % 2**10 == 0:
        return f"{limit // 2**10} KiB"
    return f"{limit} bytes"


def raise_body_limit(request: Request, limit: int) -> None:
    """Let this request's body be up to `limit` bytes (an upload route's own, larger limit)."""
    request.scope[BODY_LIMIT_KEY] = limit


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """413 problem+json for a body over the limit (checked lazily, when the app reads the body)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        scope.setdefault(BODY_LIMIT_KEY, self.max_body_bytes)
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            limit: int = scope[BODY_LIMIT_KEY]
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def _limit_error(exc: Exception) -> JSONLimitError:
    if isinstance(exc, RecursionError):
        return JSONLimitError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return JSONLimitError(f"a number cannot be read ({exc})")


def _is_json(scope: Scope) -> bool:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return False


class JSONBodyMiddleware:
    """422 problem+json for a JSON body that breaks the bounds in `servicekit.bounds`; 413 if too large."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or _NUL_IN_QUERY.search(scope.get("query_string", b"")):
            response = problem_response(
                Request(scope), 400, "Bad Request", "The path or query holds a NUL character (%00)."
            )
            await response(scope, receive, send)
            return
        if scope.get("method") not in _BODY_METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except BodyTooLarge as exc:
            await problem_response(Request(scope), 413, "Content Too Large", str(exc.detail))(
                scope, receive, send
            )
            return
        body = b"".join(chunks)
        if body.strip():
            try:
                check_json(json.loads(body))
            except (json.JSONDecodeError, UnicodeDecodeError):
                pass  # not JSON at all: the route answers with its usual 422 json_invalid
            except (JSONLimitError, RecursionError, ValueError) as exc:
                error = exc if isinstance(exc, JSONLimitError) else _limit_error(exc)
                field = "body" + (f".{error.path}" if error.path else "")
                response = problem_response(
                    Request(scope),
                    422,
                    "Unprocessable Content",
                    f"The JSON body is not accepted: {error}.",
                    errors=[FieldError(field=field, message=error.message, type="json_invalid")],
                )
                await response(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
