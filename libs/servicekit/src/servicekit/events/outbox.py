"""Writing events: the outbox row commits in the same transaction as the state change."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts import CloudEvent, spec_for
from servicekit.db import engine_key
from servicekit.events.models import OutboxMessage
from servicekit.lean import Transaction

OUTBOX_FLAG = "servicekit.outbox_added"

NOTIFY_CHANNEL = "ecom_outbox"

# A Core INSERT on the table, executed on the session's connection: the same row in the same
# transaction, without the ORM's per-statement work (this is on every writer's path).
_INSERT_ROW = insert(OutboxMessage.__table__)  # type: ignore[attr-defined]
_NOTIFY = text(f"NOTIFY {NOTIFY_CHANNEL}")


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


_relays_here: Counter[str] = Counter()  # by `engine_key`


def relay_started(database_key: str) -> None:
    """A relay of the database (its `engine_key`) runs in this process: commits here wake it directly."""
    _relays_here[database_key] += 1


def relay_stopped(database_key: str) -> None:
    _relays_here[database_key] -= 1


def _needs_notify(dialect_name: str, engine: Any) -> bool:
    """PostgreSQL without a relay of its database in this process: the commit must send NOTIFY."""
    return dialect_name == "postgresql" and not _relays_here[engine_key(engine)]


def _session_needs_notify(session: Session) -> bool:
    bind = session.get_bind()
    return _needs_notify(bind.dialect.name, bind.engine)


async def mark_staged(session: AsyncSession) -> None:
    """Tell the relay that the session's transaction staged outbox rows: it wakes when it commits.

    A relay in this process is woken by the commit itself (an after_commit hook). On PostgreSQL, a
    process without a relay of its database (a CLI command, a worker) also sends NOTIFY, which is
    delivered on commit only, so a relay elsewhere wakes exactly when there is something to publish.
    A process that runs its own relay skips it: NOTIFY costs a round trip and serializes the commits
    of notifying transactions, and the local relay publishes what this process writes anyway."""
    session.sync_session.info[OUTBOX_FLAG] = True
    if _session_needs_notify(session.sync_session):
        await session.execute(_NOTIFY)


def _add_lean(transaction: Transaction, rows: list[dict[str, Any]]) -> None:
    """The outbox rows in a lean transaction (`Database.transaction()`): the relay wakes on its commit."""
    # Staged: written with the transaction's next statement or at commit (a transaction that writes
    # nothing but its events is then one round trip on PostgreSQL).
    if len(rows) == 1:
        transaction.stage(_INSERT_ROW, rows[0])
    else:
        transaction.stage_many(_INSERT_ROW, rows)
    if not transaction.info.get(OUTBOX_FLAG) and _needs_notify(
        transaction.dialect_name, transaction.database.engine
    ):
        transaction.stage(_NOTIFY)
    transaction.info[OUTBOX_FLAG] = True


async def add_many(
    session: AsyncSession | Transaction, events: list[CloudEvent], *, topic: str | None = None
) -> None:
    """`add` for many events in one multi-row INSERT (bulk writers); published only on commit."""
    if not events:
        return
    now = datetime.now(UTC)
    if isinstance(session, Transaction):
        _add_lean(session, [row_of(event, topic=topic, now=now) for event in events])
        return
    connection = await session.connection()
    await connection.execute(_INSERT_ROW, [row_of(event, topic=topic, now=now) for event in events])
    await mark_staged(session)


async def add(session: AsyncSession | Transaction, event: CloudEvent, *, topic: str | None = None) -> None:
    """Stage `event` for publication; it is published only if the session's transaction commits.

    The session's pending objects are flushed first (as before); the row itself is one Core INSERT.
    The topic defaults to the one registered for the event type in `contracts`. A lean transaction
    (`Database.transaction()`) takes the same row, and its commit wakes the relay the same way.
    """
    row = row_of(event, topic=topic)
    if isinstance(session, Transaction):
        _add_lean(session, [row])
        return

    def stage(sync_session: Session) -> None:
        # Flush, insert and flag in one call into the session's greenlet (each await of an AsyncSession
        # method is a greenlet switch of its own: this is on every writer's path).
        sync_session.flush()
        connection = sync_session.connection()
        connection.execute(_INSERT_ROW, row)
        sync_session.info[OUTBOX_FLAG] = True
        if _session_needs_notify(sync_session):
            connection.execute(_NOTIFY)

    await session.run_sync(stage)
