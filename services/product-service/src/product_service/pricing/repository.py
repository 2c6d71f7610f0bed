"""Every query of pricing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from product_service.pricing.models import PriceAnnouncement, PriceRecord
from servicekit.http.pagination import after_key


def _series(sku: str, currency: str, channel: str):  # type: ignore[no-untyped-def]
    return select(PriceRecord).where(
        col(PriceRecord.sku) == sku,
        col(PriceRecord.currency) == currency,
        col(PriceRecord.channel) == channel,
    )


async def price_at(
    session: AsyncSession, *, sku: str, currency: str, channel: str, at: datetime
) -> PriceRecord | None:
    """The latest row effective at `at` (a later-recorded row wins a tie)."""
    query = (
        _series(sku, currency, channel)
        .where(col(PriceRecord.effective_from) <= at)
        .order_by(col(PriceRecord.effective_from).desc(), col(PriceRecord.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def prices_between(
    session: AsyncSession, *, sku: str, currency: str, channel: str, start: datetime, end: datetime
) -> Sequence[PriceRecord]:
    """Rows that became effective in (start, end)."""
    query = _series(sku, currency, channel).where(
        col(PriceRecord.effective_from) > start, col(PriceRecord.effective_from) < end
    )
    return (await session.execute(query)).scalars().all()


async def has_series(session: AsyncSession, *, sku: str, currency: str, channel: str) -> bool:
    return (await session.execute(_series(sku, currency, channel).limit(1))).scalars().first() is not None


async def history(
    session: AsyncSession,
    *,
    sku: str,
    currency: str | None,
    channel: str | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> Sequence[PriceRecord]:
    """The SKU's prices by (effective_from, id), after `after`; up to `limit`."""
    query = select(PriceRecord).where(col(PriceRecord.sku) == sku)
    if after is not None:
        query = query.where(after_key([col(PriceRecord.effective_from), col(PriceRecord.id)], after))
    if currency is not None:
        query = query.where(col(PriceRecord.currency) == currency)
    if channel is not None:
        query = query.where(col(PriceRecord.channel) == channel)
    query = query.order_by(col(PriceRecord.effective_from), col(PriceRecord.id)).limit(limit)
    return (await session.execute(query)).scalars().all()


async def unannounced_due(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[PriceRecord]:
    """Scheduled prices (recorded before their effective time) now in effect and not announced yet."""
    announced = exists(
        select(col(PriceAnnouncement.price_id)).where(col(PriceAnnouncement.price_id) == col(PriceRecord.id))
    )
    query = (
        select(PriceRecord)
        .where(
            col(PriceRecord.effective_from) <= now,
            col(PriceRecord.effective_from) > col(PriceRecord.created_at),
            ~announced,
        )
        .order_by(col(PriceRecord.effective_from), col(PriceRecord.id))
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def price_before(session: AsyncSession, *, record: PriceRecord) -> PriceRecord | None:
    """The price of the same series in effect just before `record` took over."""
    query = (
        _series(record.sku, record.currency, record.channel)
        .where(
            (col(PriceRecord.effective_from) < record.effective_from)
            | ((col(PriceRecord.effective_from) == record.effective_from) & (col(PriceRecord.id) < record.id))
        )
        .order_by(col(PriceRecord.effective_from).desc(), col(PriceRecord.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()
