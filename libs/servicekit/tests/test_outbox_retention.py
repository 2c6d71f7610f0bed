"""Published outbox rows are deleted after the retention period; unpublished ones never are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from sqlalchemy import select, update

from servicekit.db import Database
from servicekit.events import OutboxMessage, OutboxRelay, outbox
from servicekit.events import relay as relay_module

from .support import make_event, new_scope, new_topic, running, wait_until


async def _ids(database: Database) -> list[int]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id))).all())


async def _unpublished(database: Database) -> int:
    async with database.sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage.id).where(OutboxMessage.published_at.is_(None)))  # type: ignore[union-attr]
        return len(rows.all())


async def test_relay_prunes_rows_published_before_the_retention_and_keeps_the_rest(
    database: Database, producer: AIOKafkaProducer, kafka_bootstrap: str, monkeypatch
) -> None:
    monkeypatch.setattr(relay_module, "PRUNE_CHUNK", 7)  # several chunks per round
    topic = await new_topic(kafka_bootstrap)
    scope = new_scope()
    async with database.session() as session:
        for i in range(40):
            await outbox.add(session, make_event(f"key-{i % 4}", i // 4 + 1, scope=scope), topic=topic)
    relay = OutboxRelay(database, producer, retention=timedelta(days=7))
    async with running(relay.run):
        await wait_until(lambda: _none_unpublished(database), timeout=30)
    ids = await _ids(database)
    old, recent = ids[:25], ids[25:35]
    now = datetime.now(UTC)
    async with database.session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(old))
            .values(published_at=now - timedelta(days=8))  # type: ignore[union-attr]
        )
        # An old row that failed to publish: it stays, and rows after it are still pruned.
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == old[3]).values(published_at=None, attempts=5)
        )
        # The rest were published within the retention.
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(recent))
            .values(published_at=now - timedelta(days=1))  # type: ignore[union-attr]
        )

    assert await relay.prune(now=now) == 24
    assert await _ids(database) == [old[3], *ids[25:]]
    assert await _unpublished(database) == 1
    assert await relay.prune(now=now) == 0


async def test_relay_without_retention_keeps_every_row(
    database: Database, producer: AIOKafkaProducer
) -> None:
    async with database.session() as session:
        await outbox.add(session, make_event("key", 1, scope=new_scope()), topic="unused")
        await session.execute(update(OutboxMessage).values(published_at=datetime(2000, 1, 1, tzinfo=UTC)))
    before = await _ids(database)
    assert await OutboxRelay(database, producer).prune() == 0
    assert await _ids(database) == before


async def _none_unpublished(database: Database) -> bool:
    return await _unpublished(database) == 0
