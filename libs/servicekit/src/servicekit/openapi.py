"""The OpenAPI document tells the truth about the platform's error answers.

FastAPI documents a 422 with its own `HTTPValidationError` body as `application/json`, while every
service answers problem+json (`servicekit.errors`); it says nothing of the 400 a body that is not JSON
gets, nor of the 401 every authenticated operation can answer. `install_openapi` wraps an app's
document generation once, for every service and the gateway, so routes only list what is theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from servicekit.errors import PROBLEM_JSON, Problem

PROBLEM_REF = "#/components/schemas/Problem"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def problem_response_object(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite `document` in place: 422 answers are problem+json, every operation lists 400 (a path,
    query or body that cannot be parsed, refused at the edge), one that takes a body lists 413, one
    behind a token lists 401; returns it."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    if "Problem" not in schemas:
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem_schema.pop("$defs", {}))
        schemas["Problem"] = problem_schema
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = problem_response_object(422, "The request is not valid; see errors.")
            if "400" not in responses:
                responses["400"] = problem_response_object(
                    400, "The path, query or body could not be parsed (e.g. it holds a NUL character)."
                )
            if "requestBody" in operation and "413" not in responses:
                responses["413"] = problem_response_object(413, "The body is over the size limit.")
            if operation.get("security") and "401" not in responses:
                responses["401"] = problem_response_object(401, "The token is missing or not valid.")
            for answer in responses.values():
                _problem_content_only(answer)
    if not _references_any(document, FASTAPI_VALIDATION_SCHEMAS):
        for name in FASTAPI_VALIDATION_SCHEMAS:
            schemas.pop(name, None)
    return document


def _problem_content_only(answer: dict[str, Any]) -> None:
    """A response documented with the Problem model is problem+json only (FastAPI also adds JSON)."""
    content = answer.get("content", {})
    json_schema = content.get("application/json", {}).get("schema", {})
    if PROBLEM_JSON in content and json_schema.get("$ref") == PROBLEM_REF:
        del content["application/json"]


def _references_any(document: dict[str, Any], names: tuple[str, ...]) -> bool:
    targets = {f"#/components/schemas/{name}" for name in names}
    schemas = document.get("components", {}).get("schemas", {})

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            if node.get("$ref") in targets:
                return True
            return any(walk(value) for value in node.values())
        if isinstance(node, list):
            return any(walk(value) for value in node)
        return False

    rest = {key: value for key, value in document.items() if key != "components"}
    others = {name: schema for name, schema in schemas.items() if name not in names}
    return walk(rest) or walk(others)


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and so `/openapi.json` and `/docs`) return the rewritten document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
