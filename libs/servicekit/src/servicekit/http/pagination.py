"""Cursor pagination: opaque cursors over a stable sort key, `next_cursor` in the body."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from servicekit.bounds import loads_json
from servicekit.errors import BadRequest

T = TypeVar("T")

MAX_LIMIT = 500
MAX_CURSOR_CHARS = 1024
MAX_CURSOR_INT = 2**31 - 1
"""Integers in cursors are row ids (32-bit INTEGER on PostgreSQL)."""


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next page")


class PageParams(BaseModel):
    limit: int
    cursor: dict[str, Any] | None


def encode_cursor(position: dict[str, Any]) -> str:
    position = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in position.items()}
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The position a cursor holds; 400 unless it is one this module could have made (a flat object of
    a few short strings, 64-bit integers and finite numbers), so a hand-made cursor never reaches SQL."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise BadRequest("The cursor is not valid.")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = loads_json(base64.urlsafe_b64decode(padded.encode()), max_depth=1)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The cursor is not valid.") from None
    if not isinstance(value, dict) or not all(_cursor_value(item) for item in value.values()):
        raise BadRequest("The cursor is not valid.")
    return value


def _cursor_value(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return 0 <= value <= MAX_CURSOR_INT
    return value is None or isinstance(value, float | bool) or (isinstance(value, str) and len(value) <= 200)


def page_params_of(limit: int, cursor: str | None) -> PageParams:
    """The page parameters of a `limit` and an encoded `cursor` (400 when the cursor is not valid)."""
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = 50,
    cursor: Annotated[str | None, Query(description="The next_cursor of the previous page")] = None,
) -> PageParams:
    """The `limit` and `cursor` query parameters as a dependency (`async def`: FastAPI runs a plain
    `def` dependency in its thread pool)."""
    return page_params_of(limit, cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


def make_page(items: list[T], limit: int, position_of: Any) -> Page[T]:
    """Build a page from up to limit+1 fetched items; `position_of(item)` gives the cursor fields."""
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(position_of(items[-1])) if has_more and items else None
    return Page[T](items=items, next_cursor=next_cursor)


# A cursor is made by the server but comes back from the client: its values are checked like any input,
# so a hand-made one is a 400, never a value a database refuses (an integer past 64 bits, a bad date).
_MAX_CURSOR_INT = 2**63 - 1
_MAX_CURSOR_TEXT = 1000


def cursor_key(cursor: dict[str, Any] | None, *fields: tuple[str, type]) -> tuple[Any, ...] | None:
    """The typed values of `fields` (name, type: str, int or datetime) in a page's decoded cursor, in
    order; None on the first page; 400 when one is missing or not of its type."""
    if cursor is None:
        return None
    values: list[Any] = []
    for name, kind in fields:
        value = cursor.get(name)
        if kind is datetime and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise BadRequest("The cursor is not valid.") from None
            valid = value.tzinfo is not None
        elif kind is int:
            valid = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_CURSOR_INT
        elif kind is str:
            valid = isinstance(value, str) and len(value) <= _MAX_CURSOR_TEXT
        else:
            valid = False
        if not valid:
            raise BadRequest("The cursor is not valid.")
        values.append(value)
    return tuple(values)


def cursor_value(cursor: dict[str, Any] | None, name: str, kind: type) -> Any:
    """The one typed value of a single-field cursor (`cursor_key` of `(name, kind)`); None on the first
    page; 400 when it is missing or not of its type."""
    key = cursor_key(cursor, (name, kind))
    return key[0] if key else None


def after_key(columns: Sequence[Any], key: Sequence[Any]) -> ColumnElement[bool]:
    """The rows after `key` in ascending order of `columns` (keyset pagination):
    `a > x OR (a = x AND b > y) …`, which SQLite and PostgreSQL both answer from an index on the columns."""
    column, *rest_columns = columns
    value, *rest_values = key
    if not rest_columns:
        greater: ColumnElement[bool] = column > value
        return greater
    return or_(column > value, and_(column == value, after_key(rest_columns, rest_values)))
