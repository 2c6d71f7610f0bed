"""Small helpers every domain of product-service uses: ids, time, scopes, settings."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request, Security

from contracts import uuid7
from product_service.config import Settings
from servicekit.auth import Caller, require
from servicekit.db import as_utc as as_utc
from servicekit.db import utc_now as utc_now
from servicekit.http.pagination import cursor_value, decode_cursor

T = TypeVar("T")


def new_id() -> str:
    """A time-ordered id (UUIDv7), so ordering by id is ordering by creation."""
    return str(uuid7())


def cursor_id(cursor: str | None, kind: type[T]) -> T | None:
    """The `id` a page's `next_cursor` points past (None without a cursor); 400 when it is not a `kind`."""
    value: T | None = cursor_value(decode_cursor(cursor) if cursor else None, "id", kind)
    return value


async def get_settings(request: Request) -> Settings:
    # async on purpose: FastAPI runs a plain `def` dependency in the thread pool, a hop per request.
    settings: Settings = request.app.state.runtime.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadCaller = Annotated[Caller, Security(require, scopes=["products:read"])]
WriteCaller = Annotated[Caller, Security(require, scopes=["products:write"])]
InventoryCaller = Annotated[Caller, Security(require, scopes=["inventory:write"])]
