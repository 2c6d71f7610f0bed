"""The linkage model in use: the newest one stored (the default one before any training). Each process
re-reads which one that is every few seconds, so a model trained on one replica reaches the others."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from customer_service.context import CustomerContext
from customer_service.duplicates import linkage
from customer_service.duplicates.models import LinkageModelRecord

MODEL_REFRESH_SECONDS = 10.0


async def current_model(session: AsyncSession, context: CustomerContext) -> linkage.Model:
    """The newest stored model (the default one before any training), re-checked every few seconds."""
    holder = context.linkage
    now = time.monotonic()
    if now - holder.checked_at < MODEL_REFRESH_SECONDS:
        return holder.model
    holder.checked_at = now
    newest = (
        await session.execute(
            select(col(LinkageModelRecord.id)).order_by(col(LinkageModelRecord.trained_at).desc()).limit(1)
        )
    ).scalar_one_or_none()
    if newest is None:
        holder.model, holder.model_id = linkage.DEFAULT_MODEL, None
    elif newest != holder.model_id:
        record = await session.get(LinkageModelRecord, newest)
        if record is not None:
            holder.model, holder.model_id = linkage.Model.from_json(record.params), record.id
    return holder.model


async def stored_model(session: AsyncSession) -> LinkageModelRecord | None:
    return (
        await session.execute(
            select(LinkageModelRecord).order_by(col(LinkageModelRecord.trained_at).desc()).limit(1)
        )
    ).scalar_one_or_none()
