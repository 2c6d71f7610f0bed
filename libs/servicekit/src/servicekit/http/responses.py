"""JSON answers built straight from an already validated model."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response
from pydantic import BaseModel


def model_response(
    model: BaseModel, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`model` as `application/json`, the bytes FastAPI's `response_model` serialization gives, without
    validating the model a second time. For hot routes that build their answer model themselves; keep
    `response_model=` on the route so the OpenAPI document still describes the answer."""
    return Response(
        model.__pydantic_serializer__.to_json(model, by_alias=True),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
