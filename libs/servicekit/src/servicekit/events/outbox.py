"""Writing events: the outbox row commits in the same transaction as the state change."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import CloudEvent, spec_for
from servicekit.events.models import OutboxMessage

OUTBOX_FLAG = "servicekit.outbox_added"

NOTIFY_CHANNEL = "ecom_outbox"


async def add(session: AsyncSession, event: CloudEvent, *, topic: str | None = None) -> OutboxMessage:
    """Stage `event` for publication; it is published only if the session's transaction commits.

    The topic defaults to the one registered for the event type in `contracts`.
    """
    message = OutboxMessage(
        event_id=event.id,
        event_type=event.type,
        topic=topic or spec_for(event.type).topic,
        key=event.subject,
        payload=event.to_json_bytes(),
        created_at=datetime.now(UTC),
    )
    session.add(message)
    await session.flush()
    session.sync_session.info[OUTBOX_FLAG] = True
    if session.get_bind().dialect.name == "postgresql":
        # Delivered on commit only, so a relay wakes exactly when there is something to publish.
        await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return message
