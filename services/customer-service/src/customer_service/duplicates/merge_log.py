"""The merge log: finding merges (an automatic one included) so that they can be read and undone."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from customer_service.duplicates.models import Merge


async def list_merges(
    session: AsyncSession,
    *,
    survivor_id: str | None,
    automatic: bool | None,
    before_id: str | None,
    limit: int,
) -> Sequence[Merge]:
    """Merges newest first (ids are time-ordered), optionally of one survivor or only (non-)automatic."""
    query = select(Merge).order_by(col(Merge.id).desc()).limit(limit)
    if survivor_id is not None:
        query = query.where(col(Merge.survivor_id) == survivor_id)
    if automatic is not None:
        query = query.where(col(Merge.automatic).is_(automatic))
    if before_id is not None:
        query = query.where(col(Merge.id) < before_id)
    return (await session.execute(query)).scalars().all()
