"""The audit log: logins, token issuance, client and key changes, lockouts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.models import AuditEvent


async def record(
    session: AsyncSession,
    action: str,
    *,
    outcome: str = "success",
    actor: str | None = None,
    target: str | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the caller's transaction."""
    session.add(
        AuditEvent(
            at=datetime.now(UTC),
            action=action,
            outcome=outcome,
            actor=actor,
            target=target,
            ip=ip,
            detail=detail or {},
        )
    )
    await session.flush()


async def search(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
    outcome: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEvent]:
    """Newest first; up to limit+1 rows so the caller can tell whether there is a next page."""
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    if action:
        query = query.where(col(AuditEvent.action) == action)
    if outcome:
        query = query.where(col(AuditEvent.outcome) == outcome)
    if actor:
        query = query.where(col(AuditEvent.actor) == actor)
    if since:
        query = query.where(col(AuditEvent.at) >= since)
    if until:
        query = query.where(col(AuditEvent.at) < until)
    return list((await session.scalars(query)).all())
