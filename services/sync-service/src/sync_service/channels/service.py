"""Channel registry rules: register, read, list, change (If-Match), retire, rotate the secret; every
change emits its event on ecom.channels.v1 in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event
from contracts.catalog.channels import ChannelRegistered, ChannelRetired, ChannelUpdated
from servicekit.errors import Conflict, NotFound, PreconditionFailed, UnprocessableEntity
from servicekit.events import outbox
from servicekit.http.concurrency import check_if_match
from servicekit.http.pagination import Page, PageParams, after_key, cursor_key, make_page
from servicekit.transitions import compare_and_set
from sync_service.channels import secrets
from sync_service.channels.models import Channel
from sync_service.channels.schemas import PUSHED_KINDS, ChannelCreate, ChannelRead, ChannelUpdate
from sync_service.common import as_utc, new_id, utc_now


def to_read(channel: Channel) -> ChannelRead:
    return ChannelRead(
        id=channel.id,
        code=channel.code,
        name=channel.name,
        kind=channel.kind,
        endpoint=channel.endpoint,
        currency=channel.currency,
        locale=channel.locale,
        price_adjustment_percent=Decimal(channel.price_adjustment_bp) / 100,
        category_ids=list(channel.category_ids),
        location_codes=list(channel.location_codes),
        safety_buffer=channel.safety_buffer,
        completeness_threshold=channel.completeness_threshold,
        drift_policy=channel.drift_policy,
        status=channel.status,
        version=channel.version,
        created_at=as_utc(channel.created_at),
        updated_at=as_utc(channel.updated_at),
    )


def _facts(channel: Channel) -> dict[str, Any]:
    return {
        "channel_id": channel.id,
        "code": channel.code,
        "title": channel.name,
        "kind": channel.kind,
        "status": channel.status,
        "currency": channel.currency,
        "locale": channel.locale,
        "price_adjustment_percent": Decimal(channel.price_adjustment_bp) / 100,
        "category_ids": list(channel.category_ids),
        "location_codes": list(channel.location_codes),
        "safety_buffer": channel.safety_buffer,
        "completeness_threshold": channel.completeness_threshold,
        "drift_policy": channel.drift_policy,
        "version": channel.version,
    }


def _bp(percent: Decimal) -> int:
    return int((percent * 100).to_integral_value())


async def register_channel(
    session: AsyncSession, *, body: ChannelCreate, secrets_key: str
) -> tuple[Channel, str]:
    """A new channel and its signing secret (returned in clear once); emits ecom.channel.registered.v1."""
    taken = await session.execute(select(col(Channel.id)).where(col(Channel.code) == body.code))
    if taken.first() is not None:
        raise Conflict(f"A channel with code {body.code!r} exists.")
    now = utc_now()
    channel_id = new_id()
    secret = secrets.new_signing_secret()
    channel = Channel(
        id=channel_id,
        code=body.code,
        name=body.name,
        kind=body.kind,
        endpoint=body.endpoint,
        secret_ciphertext=secrets.seal(secret, key=secrets_key, channel_id=channel_id),
        currency=body.currency,
        locale=body.locale,
        price_adjustment_bp=_bp(body.price_adjustment_percent),
        category_ids=body.category_ids,
        location_codes=body.location_codes,
        safety_buffer=body.safety_buffer,
        completeness_threshold=body.completeness_threshold,
        drift_policy=body.drift_policy,
        status=body.status,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(channel)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"A channel with code {body.code!r} exists.") from None
    await outbox.add(
        session,
        build_event(
            "ecom.channel.registered.v1",
            ChannelRegistered(**_facts(channel)),
            subject=channel.id,
            sequence=1,
        ),
    )
    return channel, secret


async def get_channel(session: AsyncSession, *, channel_id: str) -> Channel:
    channel = await session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"No channel {channel_id}.")
    return channel


async def list_channels(
    session: AsyncSession, *, kind: str | None, status: str | None, page: PageParams
) -> Page[ChannelRead]:
    """Channels by code; cursor pagination."""
    key = cursor_key(page.cursor, ("code", str))
    query = select(Channel)
    if kind is not None:
        query = query.where(col(Channel.kind) == kind)
    if status is not None:
        query = query.where(col(Channel.status) == status)
    if key is not None:
        query = query.where(after_key([col(Channel.code)], key))
    rows = (await session.execute(query.order_by(col(Channel.code)).limit(page.limit + 1))).scalars().all()
    result = make_page(list(rows), page.limit, lambda channel: {"code": channel.code})
    return Page[ChannelRead](items=[to_read(c) for c in result.items], next_cursor=result.next_cursor)


async def channels_by_kind(session: AsyncSession, kinds: Sequence[str]) -> Sequence[Channel]:
    """Every channel of these kinds that is not retired."""
    query = select(Channel).where(col(Channel.kind).in_(kinds), col(Channel.status) != "retired")
    return (await session.execute(query.order_by(col(Channel.code)))).scalars().all()


async def update_channel(
    session: AsyncSession, *, channel: Channel, changes: ChannelUpdate, if_match: str | None
) -> Channel:
    """Apply the fields present in `changes`: 428 without If-Match, 412 when stale (checked again in the
    UPDATE), 409 on a retired channel. Emits ecom.channel.updated.v1, or .retired.v1 on retirement."""
    check_if_match(if_match, channel.version)
    if channel.status == "retired":
        raise Conflict("The channel is retired; register a new one.")
    values = changes.model_dump(exclude_unset=True)
    if values.get("endpoint", channel.endpoint) is None and channel.kind in PUSHED_KINDS:
        raise UnprocessableEntity(f"A {channel.kind} channel needs an endpoint.")
    for field in ("name", "currency", "locale", "drift_policy", "status"):
        if field in values and values[field] is None:
            raise UnprocessableEntity(f"{field} cannot be null.")
    if "price_adjustment_percent" in values:
        percent = values.pop("price_adjustment_percent")
        if percent is None:
            raise UnprocessableEntity("price_adjustment_percent cannot be null.")
        values["price_adjustment_bp"] = _bp(percent)
    for field in ("category_ids", "location_codes", "safety_buffer", "completeness_threshold"):
        if field in values and values[field] is None:
            raise UnprocessableEntity(f"{field} cannot be null.")
    changed = sorted(k for k, v in values.items() if getattr(channel, k) != v)
    if not changed:
        return channel
    expected = channel.version
    now = utc_now()
    won = await compare_and_set(
        session,
        update(Channel)
        .where(
            col(Channel.id) == channel.id,
            col(Channel.version) == expected,
            col(Channel.status) != "retired",
        )
        .values(**values, version=expected + 1, updated_at=now),
    )
    if not won:
        raise PreconditionFailed("The channel was changed by someone else; read it again and retry.")
    for key, value in values.items():
        setattr(channel, key, value)
    channel.version = expected + 1
    channel.updated_at = now
    facts = _facts(channel)
    names = ["price_adjustment_percent" if name == "price_adjustment_bp" else name for name in changed]
    if channel.status == "retired":
        event = build_event(
            "ecom.channel.retired.v1", ChannelRetired(**facts), subject=channel.id, sequence=channel.version
        )
    else:
        event = build_event(
            "ecom.channel.updated.v1",
            ChannelUpdated(**facts, changed=names),
            subject=channel.id,
            sequence=channel.version,
        )
    await outbox.add(session, event)
    return channel


async def rotate_secret(
    session: AsyncSession, *, channel: Channel, if_match: str | None, secrets_key: str
) -> tuple[Channel, str]:
    """A new signing secret (returned in clear once); the old one stops signing at once."""
    check_if_match(if_match, channel.version)
    if channel.status == "retired":
        raise Conflict("The channel is retired.")
    secret = secrets.new_signing_secret()
    expected = channel.version
    now = utc_now()
    ciphertext = secrets.seal(secret, key=secrets_key, channel_id=channel.id)
    won = await compare_and_set(
        session,
        update(Channel)
        .where(col(Channel.id) == channel.id, col(Channel.version) == expected)
        .values(secret_ciphertext=ciphertext, version=expected + 1, updated_at=now),
    )
    if not won:
        raise PreconditionFailed("The channel was changed by someone else; read it again and retry.")
    channel.secret_ciphertext = ciphertext
    channel.version = expected + 1
    channel.updated_at = now
    return channel, secret
