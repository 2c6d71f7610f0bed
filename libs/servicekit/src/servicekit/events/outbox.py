"""Writing events: the outbox row commits in the same transaction as the state change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import CloudEvent, spec_for
from servicekit.events.models import OutboxMessage

OUTBOX_FLAG = "servicekit.outbox_added"

NOTIFY_CHANNEL = "ecom_outbox"


def row_of(event: CloudEvent, *, topic: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The outbox row of `event`, for bulk writers (`add_many`, or COPY on PostgreSQL followed by
    `mark_staged`). The topic defaults to the one registered for the event type in `contracts`."""
    return {
        "event_id": event.id,
        "event_type": event.type,
        "topic": topic or spec_for(event.type).topic,
        "key": event.subject,
        "payload": event.to_json_bytes(),
        "created_at": now or datetime.now(UTC),
        "published_at": None,
        "attempts": 0,
        "last_error": None,
    }


async def mark_staged(session: AsyncSession) -> None:
    """Tell the relay that the session's transaction staged outbox rows: it wakes when it commits."""
    session.sync_session.info[OUTBOX_FLAG] = True
    if session.get_bind().dialect.name == "postgresql":
        # Delivered on commit only, so a relay wakes exactly when there is something to publish.
        await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


async def add_many(session: AsyncSession, events: list[CloudEvent], *, topic: str | None = None) -> None:
    """`add` for many events in one multi-row INSERT (bulk writers); published only on commit."""
    if not events:
        return
    now = datetime.now(UTC)
    await session.execute(insert(OutboxMessage), [row_of(event, topic=topic, now=now) for event in events])
    await mark_staged(session)


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
    await mark_staged(session)
    return message
