"""RFC 9457 problem+json errors: one base class, one handler for every kind of failure."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from servicekit.logging import request_id_var

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# RFC 9110's names where this Python's `HTTPStatus` still has RFC 7231's (3.13 renamed them).
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def status_title(status: int) -> str:
    """The reason phrase of `status` as RFC 9110 names it (the problem's `title`)."""
    return _TITLES.get(status) or HTTPStatus(status).phrase


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. body.email")
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ServiceError(Exception):
    """An error a route may return, rendered as problem+json with its status."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or self.title)
        if status is not None:
            self.status = status
            if title is None:
                self.title = status_title(status)
        if title is not None:
            self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(ServiceError):
    status, title = 400, "Bad Request"


class Unauthorized(ServiceError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        headers = kwargs.pop("headers", None) or {"WWW-Authenticate": 'Bearer realm="ecom"'}
        super().__init__(detail, headers=headers, **kwargs)


class Forbidden(ServiceError):
    status, title = 403, "Forbidden"


class NotFound(ServiceError):
    status, title = 404, "Not Found"


class Conflict(ServiceError):
    status, title = 409, "Conflict"


class PreconditionFailed(ServiceError):
    status, title = 412, "Precondition Failed"


class PreconditionRequired(ServiceError):
    status, title = 428, "Precondition Required"


class UnprocessableEntity(ServiceError):
    status, title = 422, "Unprocessable Content"


class ServiceUnavailable(ServiceError):
    status, title = 503, "Service Unavailable"


def problem_response(
    request: Request | None,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    problem = Problem(
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        request_id=request_id_var.get(),
        errors=errors,
    )
    body = problem.model_dump(exclude_none=True)
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for a route, so the OpenAPI document lists its problem answers."""
    return {
        status: {
            "model": Problem,
            "description": status_title(status),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def _field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    return ".".join(str(part) for part in loc)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status >= 500:
        log.error("service error: %s", exc, exc_info=exc)
    return problem_response(request, exc.status, exc.title, exc.detail, headers=exc.headers, extra=exc.extra)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(
            field=_field_path(err.get("loc", ())), message=str(err.get("msg")), type=str(err.get("type"))
        )
        for err in exc.errors()
    ]
    return problem_response(
        request, 422, "Unprocessable Content", "The request is not valid; see errors.", errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        title = status_title(exc.status_code)
    except ValueError:
        title = "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    if exc.status_code == 404 and detail is None:
        detail = f"No route matches {request.method} {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route whose path matched; a path served by several
        # routes (GET and POST of a collection) allows all of theirs.
        headers["Allow"] = allowed = _allowed_methods(request) or headers.get("Allow", "")
        if detail is None:
            detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed or 'none'}."
    elif detail is None:
        detail = f"{title}."
    return problem_response(request, exc.status_code, title, detail, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route of the app takes at this path (HEAD with GET, as `HeadAsGet` answers it)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods.update(route_methods)
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def unhandled_error_response(request: Request, exc: Exception) -> JSONResponse:
    """Log a bug with its traceback and answer 500 problem+json, never the stack trace."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "Internal Server Error", "An unexpected error occurred.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, unhandled_error_response)
