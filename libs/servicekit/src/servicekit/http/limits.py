"""Request bounds at the edge, as pure-ASGI middleware: body size (413) and JSON bodies (422).

- `BodyLimitMiddleware` refuses a body larger than the limit, whether the Content-Length says so up front
  or the bytes streamed say so later. The limit is the app's `max_body_bytes` setting; an upload route
  raises it for its own request with `raise_body_limit` (see `servicekit.http.uploads`).
- `JSONBodyMiddleware` refuses a NUL character in the path, query or an urlencoded form (400: no
  database text column can hold one), and reads a JSON body (`application/json` or `*+json`) before the
  route does, refusing one nested too deep, holding NaN/Infinity, a number that overflows (1e400), an
  integer beyond 64 bits, a NUL or a lone surrogate (`"\\ud800"`, no UTF-8 text): Python's `json` would
  turn 1e400 into infinity, accept NaN, and raise RecursionError on deep nesting, and none of those may
  reach a handler. Accepted bodies are replayed to the app unchanged. A route that judges a list of
  items one by one (`itemised`: path -> the body's list key, e.g. the track API's `batch`) has each item
  checked on its own: an item breaking a bound is replaced by `null` in the body the app reads, and its
  problem is left in the request's scope (`item_problems`) for the route to report by index, so one bad
  item does not sink the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.bounds import MAX_JSON_DEPTH, REPEATED_KEY_MESSAGE, JSONLimitError, RepeatedKeys, check_json
from servicekit.errors import FieldError, problem_response

BODY_LIMIT_KEY = "servicekit.max_body_bytes"
ITEM_PROBLEMS_KEY = "servicekit.json_item_problems"
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


def _body_kind(scope: Scope) -> str | None:
    """ "json" for a JSON body, "form" for an urlencoded form, else None (not checked here)."""
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            if media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            ):
                return "json"
            if media == b"application/x-www-form-urlencoded":
                return "form"
            return None
    return None


class JSONBodyMiddleware:
    """422 problem+json for a JSON body that breaks the bounds in `servicekit.bounds`; 400 for a NUL in the
    path or query. A JSON body is buffered up to `max_check_bytes` (the app's body limit) and checked; a
    larger one is handed on unchecked, for the body limit inside to refuse, or an upload route that
    raised it to take as a file."""

    def __init__(self, app: ASGIApp, max_check_bytes: int, itemised: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.max_check_bytes = max_check_bytes
        self.itemised = dict(itemised or {})

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
        kind = _body_kind(scope) if scope.get("method") in _BODY_METHODS else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        size = 0
        complete = False
        while size <= self.max_check_bytes:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                break
        if complete and size <= self.max_check_bytes and kind == "form":
            if _NUL_IN_QUERY.search(b"".join(m.get("body", b"") for m in buffered)):
                response = problem_response(
                    Request(scope), 400, "Bad Request", "The form holds a NUL character (%00)."
                )
                await response(scope, receive, send)
                return
        elif complete and size <= self.max_check_bytes:
            list_key = self.itemised.get(scope.get("path", "")) if scope.get("method") == "POST" else None
            problem, problems, cleaned = _json_problem(
                b"".join(m.get("body", b"") for m in buffered), list_key
            )
            if problems:
                scope[ITEM_PROBLEMS_KEY] = problems
                buffered = [{"type": "http.request", "body": cleaned, "more_body": False}]
                scope["headers"] = [
                    (key, str(len(cleaned)).encode() if key == b"content-length" else value)
                    for key, value in scope.get("headers", ())
                ]
            if problem is not None:
                await problem_response(
                    Request(scope),
                    422,
                    "Unprocessable Content",
                    f"The JSON body is not accepted: {problem}.",
                    errors=[FieldError(field=_field(problem), message=problem.message, type="json_invalid")],
                )(scope, receive, send)
                return

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def _field(error: JSONLimitError) -> str:
    return "body" + (f".{error.path}" if error.path else "")


def item_problems(scope: Scope) -> dict[int, JSONLimitError]:
    """The problems of the items `JSONBodyMiddleware` replaced by `null` in an itemised body, by index
    (the path of each within its item)."""
    problems: dict[int, JSONLimitError] = scope.get(ITEM_PROBLEMS_KEY, {})
    return problems


def _item_problem(item: Any, repeated: RepeatedKeys) -> JSONLimitError | None:
    try:
        check_json(item, max_depth=MAX_JSON_DEPTH - 2)  # an item of `{"key": [item]}` sits two levels down
    except JSONLimitError as exc:
        return exc
    paths = repeated.paths(item)
    return JSONLimitError(REPEATED_KEY_MESSAGE, paths[0]) if paths else None


def _json_problem(
    body: bytes, list_key: str | None = None
) -> tuple[JSONLimitError | None, dict[int, JSONLimitError], bytes]:
    """Why a JSON body breaks the bounds (None also when it is not JSON at all: the route then answers
    with its usual 422 json_invalid). With `list_key`, when the body is an object holding a list there,
    each item is judged on its own: the items' problems by index, and the body with each bad item
    replaced by `null` (the body as it came when there is none)."""
    none: dict[int, JSONLimitError] = {}
    if not body.strip():
        return None, none, body
    repeated = RepeatedKeys()
    try:
        value = json.loads(body, object_pairs_hook=repeated)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, none, body
    except (RecursionError, ValueError) as exc:
        return _limit_error(exc), none, body
    problems: dict[int, JSONLimitError] = {}
    dropped = []  # held, so no id `repeated` noted is reused while it is asked about the rest
    items = value.get(list_key) if list_key is not None and isinstance(value, dict) else None
    if isinstance(items, list):
        for index, item in enumerate(items):
            problem = _item_problem(item, repeated)
            if problem is not None:
                problems[index] = problem
                dropped.append(item)
                items[index] = None
    try:
        check_json(value)  # what is left: the body outside its bad items
    except JSONLimitError as exc:
        return exc, none, body
    paths = repeated.paths(value)
    if paths:  # which of the values was meant is unknown: json.loads would keep the last
        return JSONLimitError(REPEATED_KEY_MESSAGE, paths[0]), none, body
    return None, problems, json.dumps(value).encode() if problems else body
