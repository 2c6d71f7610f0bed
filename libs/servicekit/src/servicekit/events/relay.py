"""The outbox relay: publishes committed outbox rows in order and marks them published."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from servicekit import metrics
from servicekit.db import Database, asyncpg_dsn
from servicekit.events.models import OutboxMessage
from servicekit.events.outbox import NOTIFY_CHANNEL, OUTBOX_FLAG

log = logging.getLogger(__name__)

_local_wakers: set[Callable[[], None]] = set()


@sa_event.listens_for(Session, "after_commit")
def _wake_local_relays(session: Session) -> None:
    # A commit in this process that added outbox rows wakes this process's relays at once,
    # so SQLite needs no tight polling; other writers are found by the poll or LISTEN/NOTIFY.
    if session.info.pop(OUTBOX_FLAG, False):
        for wake in list(_local_wakers):
            wake()


@sa_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(OUTBOX_FLAG, None)


class OutboxRelay:
    """Publishes the outbox of one database. Several relays (replicas) may share a PostgreSQL outbox:
    rows are claimed with FOR UPDATE SKIP LOCKED, and a row waits while an older row of the same key
    is held by another relay, so per-key order survives sharing."""

    def __init__(
        self,
        database: Database,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 200,
        poll_interval: float = 0.05,
        backlog_interval: float = 5.0,
        name: str = "relay",
    ) -> None:
        self.database = database
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backlog_interval = backlog_interval
        self.name = name
        self._wake = asyncio.Event()
        self._failures = 0
        self._pg_listener: Any = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set."""
        _local_wakers.add(self.wake)
        await self._listen()
        last_backlog = 0.0
        try:
            while not stop.is_set():
                # Cleared before publishing: a commit during the batch sets it again and is not lost.
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                except Exception:
                    log.exception("outbox relay %s: publishing failed", self.name)
                    published = 0
                    self._failures += 1
                now = time.monotonic()
                if now - last_backlog >= self.backlog_interval:
                    last_backlog = now
                    with contextlib.suppress(Exception):
                        metrics.OUTBOX_BACKLOG.set(await self.backlog())
                if published >= self.batch_size and not self._failures:
                    continue
                delay = self.poll_interval if not self._failures else min(0.1 * 2**self._failures, 5.0)
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            _local_wakers.discard(self.wake)
            await self._unlisten()

    async def backlog(self) -> int:
        async with self.database.sessionmaker() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.published_at).is_(None))
            )
        return int(count or 0)

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch; returns how many rows were published."""
        async with self.database.sessionmaker() as session, session.begin():
            rows = await self._claim(session)
            if not rows:
                return 0
            futures = []
            for row in rows:
                futures.append(
                    await self.producer.send(
                        row.topic,
                        row.payload,
                        key=row.key.encode(),
                        headers=[("ce_id", row.event_id.encode()), ("ce_type", row.event_type.encode())],
                    )
                )
            results = await asyncio.gather(*futures, return_exceptions=True)
            now = datetime.now(UTC)
            published_ids: list[int] = []
            failed = 0
            for row, result in zip(rows, results, strict=True):
                assert row.id is not None
                if isinstance(result, BaseException):
                    failed += 1
                    await session.execute(
                        update(OutboxMessage)
                        .where(col(OutboxMessage.id) == row.id)
                        .values(attempts=col(OutboxMessage.attempts) + 1, last_error=repr(result)[:2000])
                    )
                    continue
                published_ids.append(row.id)
                metrics.OUTBOX_PUBLISHED.labels(row.topic).inc()
                created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
                metrics.OUTBOX_PUBLISH_LATENCY.observe(max(0.0, (now - created).total_seconds()))
            if published_ids:
                await session.execute(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(published_ids))
                    .values(published_at=now)
                )
        if failed:
            metrics.OUTBOX_PUBLISH_FAILURES.inc(failed)
            self._failures += 1
            log.warning("outbox relay %s: %d of %d rows failed to publish", self.name, failed, len(rows))
        else:
            self._failures = 0
        return len(published_ids)

    async def _claim(self, session: AsyncSession) -> Sequence[OutboxMessage]:
        query = (
            select(OutboxMessage)
            .where(col(OutboxMessage.published_at).is_(None))
            .order_by(col(OutboxMessage.id))
            .limit(self.batch_size)
        )
        if self.database.is_sqlite:
            return (await session.execute(query)).scalars().all()
        rows = (await session.execute(query.with_for_update(skip_locked=True))).scalars().all()
        if not rows:
            return rows
        return await self._without_keys_held_elsewhere(session, rows)

    async def _without_keys_held_elsewhere(
        self, session: AsyncSession, rows: Sequence[OutboxMessage]
    ) -> list[OutboxMessage]:
        # An unpublished row of the same key that is not in our batch is locked by another relay (SKIP
        # LOCKED claims interleave, so batches need not be contiguous): publishing any of our rows of that
        # key newer than it could overtake it. Publish only the rows older than the oldest such row and
        # leave the rest of that key for a later round.
        keys = {row.key for row in rows}
        claimed = [row.id for row in rows]
        elsewhere = await session.execute(
            select(col(OutboxMessage.key), func.min(col(OutboxMessage.id)))
            .where(
                col(OutboxMessage.published_at).is_(None),
                col(OutboxMessage.key).in_(list(keys)),
                col(OutboxMessage.id).not_in(claimed),
            )
            .group_by(col(OutboxMessage.key))
        )
        oldest_elsewhere = {key: oldest for key, oldest in elsewhere.all() if oldest is not None}
        publishable = []
        for row in rows:
            assert row.id is not None
            limit = oldest_elsewhere.get(row.key)
            if limit is None or row.id < limit:
                publishable.append(row)
        return publishable

    async def _listen(self) -> None:
        if self.database.is_sqlite:
            return
        import asyncpg

        try:
            conn = await asyncpg.connect(asyncpg_dsn(self.database.url))
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self.wake())
            self._pg_listener = conn
        except Exception:
            log.warning("outbox relay %s: LISTEN unavailable, polling instead", self.name, exc_info=True)

    async def _unlisten(self) -> None:
        conn, self._pg_listener = self._pg_listener, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
