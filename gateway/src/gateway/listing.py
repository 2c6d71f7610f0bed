"""Pages of the admin lists (people, clients, signing keys): oldest first, keyset on (created_at, id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.http.pagination import Page, PageParams, after_key, cursor_key, make_page

T = TypeVar("T")


async def page_by_creation(
    session: AsyncSession, model: type[T], id_column: Any, page: PageParams
) -> Page[T]:
    """One page of `model` rows in creation order (ties broken by `id_column`)."""
    created_at = getattr(model, "created_at")  # noqa: B009 - every listed table has one
    key = cursor_key(page.cursor, ("created_at", datetime), ("id", str))
    query = select(model).order_by(created_at, id_column).limit(page.limit + 1)
    if key is not None:
        query = query.where(after_key([created_at, id_column], key))
    rows = list((await session.scalars(query)).all())
    id_name = id_column.key
    return make_page(
        rows, page.limit, lambda row: {"created_at": row.created_at, "id": getattr(row, id_name)}
    )
