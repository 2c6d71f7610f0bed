"""Channel codes: the projection of sync-service's registry, and the check every route that takes a
channel code makes (422 for a code the registry does not hold, or holds as retired)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import CloudEvent, parse_data
from contracts.catalog.channels import ChannelRegistered, ChannelRetired, ChannelUpdated
from product_service.channels.models import KnownChannel
from product_service.common import utc_now
from servicekit.errors import UnprocessableEntity


async def on_channel_changed(session: AsyncSession, event: CloudEvent) -> None:
    """Apply ecom.channel.registered/updated/retired.v1: the newest version of each channel wins."""
    data = parse_data(event)
    assert isinstance(data, ChannelRegistered | ChannelUpdated | ChannelRetired)
    status = "retired" if isinstance(data, ChannelRetired) else data.status
    row = await session.get(KnownChannel, data.code)
    if row is None:
        session.add(
            KnownChannel(
                code=data.code,
                channel_id=data.channel_id,
                title=data.title,
                kind=data.kind,
                status=status,
                completeness_threshold=data.completeness_threshold,
                safety_buffer=data.safety_buffer,
                version=data.version,
                updated_at=utc_now(),
            )
        )
    elif data.version > row.version or row.channel_id != data.channel_id:
        row.channel_id = data.channel_id
        row.title = data.title
        row.kind = data.kind
        row.status = status
        row.completeness_threshold = data.completeness_threshold
        row.safety_buffer = data.safety_buffer
        row.version = data.version
        row.updated_at = utc_now()
    await session.flush()


async def require_known(session: AsyncSession, codes: Iterable[str | None]) -> None:
    """422 naming every code that is not a registered, unretired channel."""
    wanted = sorted({code for code in codes if code})
    if not wanted:
        return
    rows = await session.execute(
        select(col(KnownChannel.code)).where(
            col(KnownChannel.code).in_(wanted), col(KnownChannel.status) != "retired"
        )
    )
    unknown = sorted(set(wanted) - set(rows.scalars().all()))
    if unknown:
        raise UnprocessableEntity(
            f"Unknown channel code(s): {', '.join(unknown)}. Register the channel in sync-service first "
            "(POST /api/sync/v1/channels)."
        )


async def known_channels(session: AsyncSession) -> Sequence[KnownChannel]:
    query = select(KnownChannel).order_by(col(KnownChannel.code))
    return (await session.execute(query)).scalars().all()
