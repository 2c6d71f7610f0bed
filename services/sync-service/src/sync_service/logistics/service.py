"""Registering logistics partners: a signing secret made here, shown once, stored encrypted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from servicekit.errors import Conflict, NotFound
from servicekit.http.concurrency import check_if_match
from servicekit.transitions import compare_and_set_or_conflict
from sync_service.channels.secrets import new_signing_secret, seal
from sync_service.common import new_id, utc_now
from sync_service.logistics.models import LogisticsPartner
from sync_service.logistics.schemas import PartnerCreate, PartnerUpdate


async def create(session: AsyncSession, *, key: str, body: PartnerCreate) -> tuple[LogisticsPartner, str]:
    """The new partner and its signing secret (the only time it is seen in clear)."""
    secret = new_signing_secret()
    partner_id = new_id()
    stamp = utc_now()
    partner = LogisticsPartner(
        id=partner_id,
        code=body.code,
        name=body.name,
        client_id=body.client_id,
        secret_sealed=seal(secret, key=key, channel_id=partner_id),
        status_overrides=dict(body.status_overrides),
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(partner)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("A partner with this code or client id already exists.") from None
    return partner, secret


async def get(session: AsyncSession, *, partner_id: str) -> LogisticsPartner:
    partner = await session.get(LogisticsPartner, partner_id)
    if partner is None:
        raise NotFound(f"No logistics partner {partner_id}.")
    return partner


async def by_code(session: AsyncSession, code: str) -> LogisticsPartner | None:
    query = select(LogisticsPartner).where(col(LogisticsPartner.code) == code)
    return (await session.execute(query)).scalars().first()


async def by_client(session: AsyncSession, client_id: str) -> LogisticsPartner | None:
    query = select(LogisticsPartner).where(col(LogisticsPartner.client_id) == client_id)
    return (await session.execute(query)).scalars().first()


async def page(session: AsyncSession, *, after_code: str | None, limit: int) -> list[LogisticsPartner]:
    query = select(LogisticsPartner).order_by(col(LogisticsPartner.code)).limit(limit + 1)
    if after_code is not None:
        query = query.where(col(LogisticsPartner.code) > after_code)
    return list((await session.execute(query)).scalars())


async def _write(
    session: AsyncSession, partner: LogisticsPartner, values: dict[str, Any]
) -> LogisticsPartner:
    """A compare-and-set on the version the caller's If-Match named."""
    values.update(version=partner.version + 1, updated_at=utc_now())
    try:
        await compare_and_set_or_conflict(
            session,
            update(LogisticsPartner)
            .where(col(LogisticsPartner.id) == partner.id, col(LogisticsPartner.version) == partner.version)
            .values(values),
            detail="The partner changed meanwhile; read it again and retry.",
        )
    except IntegrityError:
        raise Conflict("Another partner has this client id.") from None
    return await session.get(LogisticsPartner, partner.id, populate_existing=True) or partner


async def update_partner(
    session: AsyncSession, *, partner: LogisticsPartner, changes: PartnerUpdate, if_match: str | None
) -> LogisticsPartner:
    check_if_match(if_match, partner.version)
    values = changes.model_dump(exclude_unset=True)
    if not values:
        return partner
    return await _write(session, partner, values)


async def rotate_secret(
    session: AsyncSession, *, key: str, partner: LogisticsPartner, if_match: str | None
) -> tuple[LogisticsPartner, str]:
    check_if_match(if_match, partner.version)
    secret = new_signing_secret()
    updated = await _write(session, partner, {"secret_sealed": seal(secret, key=key, channel_id=partner.id)})
    return updated, secret
