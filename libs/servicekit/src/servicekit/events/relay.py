"""The outbox relay: publishes committed outbox rows in order and marks them published."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from servicekit import lean, metrics
from servicekit.db import Database, as_utc, asyncpg_dsn, engine_key
from servicekit.events.models import OutboxMessage
from servicekit.events.outbox import NOTIFY_CHANNEL, OUTBOX_FLAG, relay_started, relay_stopped

log = logging.getLogger(__name__)

# The relays running in this process, by their database's URL: a commit wakes only its own database's
# relays (a process with several databases, as a test or a bench, would otherwise send every relay to
# look at an empty outbox on each commit of another).
_local_wakers: dict[str, set[Callable[[], None]]] = defaultdict(set)  # by `engine_key`

LINGER_AFTER = 10
"""Two rounds in a row of at least this many rows mean commits are coming faster than rounds go: the relay
lingers (`OutboxRelay.linger`) before the next one. Otherwise (a quiet service, a few hundred events a
second, or one round after a stall), each commit is published at once."""
LISTENING_POLL_INTERVAL = 1.0  # seconds between looks while LISTEN/NOTIFY wakes the relay
PRUNE_CHUNK = 1000  # outbox rows read (and at most deleted) per pruning statement
PRUNE_CHUNKS_PER_ROUND = 20  # so one round stays short; the next round goes on where this one stopped

CLAIMED_COLUMNS = (
    col(OutboxMessage.id),
    col(OutboxMessage.topic),
    col(OutboxMessage.key),
    col(OutboxMessage.payload),
    col(OutboxMessage.event_id),
    col(OutboxMessage.event_type),
    col(OutboxMessage.created_at),
)


class ClaimedRow(Protocol):
    """The columns of an outbox row the relay reads (a Core row: no ORM object per event)."""

    id: int
    topic: str
    key: str
    payload: bytes
    event_id: str
    event_type: str
    created_at: datetime


def _settle(
    rows: Sequence[ClaimedRow], errors: Sequence[BaseException | None]
) -> tuple[list[ClaimedRow], list[tuple[ClaimedRow, BaseException]], int]:
    """Split a sent batch into rows to mark published, rows that failed, and how many rows were held
    back because an older row of their key failed (they stay unpublished and are sent again)."""
    published: list[ClaimedRow] = []
    failed: list[tuple[ClaimedRow, BaseException]] = []
    broken_keys: set[tuple[str, str]] = set()
    held_back = 0
    for row, error in zip(rows, errors, strict=True):
        key = (row.topic, row.key)
        if error is not None:
            failed.append((row, error))
            broken_keys.add(key)
        elif key in broken_keys:
            held_back += 1
        else:
            published.append(row)
    return published, failed, held_back


def _wake(database_key: str) -> None:
    for wake in list(_local_wakers.get(database_key, ())):
        wake()


@sa_event.listens_for(Session, "after_commit")
def _wake_local_relays(session: Session) -> None:
    # A commit in this process that added outbox rows wakes this process's relays of its database at
    # once, so SQLite needs no tight polling; other writers are found by the poll or LISTEN/NOTIFY.
    if session.info.pop(OUTBOX_FLAG, False):
        _wake(engine_key(session.get_bind().engine))


@lean.on_commit
def _wake_after_lean_commit(transaction: lean.Transaction) -> None:
    if transaction.info.pop(OUTBOX_FLAG, False):
        _wake(engine_key(transaction.database.engine))


@sa_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(OUTBOX_FLAG, None)


def _claim_on_postgresql(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """The claim as one statement (one round trip): lock up to a batch of unpublished rows, skipping rows
    another relay holds, and give each claimed row `held_from`, the oldest unpublished row of its key that
    is not in the batch and older than the batch's newest row (so locked by another relay: SKIP LOCKED
    claims interleave, batches need not be contiguous), or NULL. Only unpublished rows below the batch's
    newest id can hold a claimed row back, so `held` reads that one range of the pending index once, for
    the whole batch (a lookup per claimed row cost 13 ms a batch with 1,000 rows pending). The statement
    also turns off the wait for the WAL flush at this transaction's commit (`set_config(..., is_local =>
    true)`, evaluated with the claimed rows): a relay's mark lost in a crash of the database server only
    publishes its rows again, which the consumers' inbox absorbs, and a relay batch need not wait for a
    disk flush before the next one."""
    claimed = query.with_for_update(skip_locked=True).cte("claimed")
    other = aliased(OutboxMessage)
    held = (
        select(col(other.key).label("key"), func.min(col(other.id)).label("held_from"))
        .where(
            col(other.published_at).is_(None),
            col(other.id) < select(func.max(claimed.c.id)).scalar_subquery(),
            col(other.id).not_in(select(claimed.c.id)),
        )
        .group_by(col(other.key))
        .cte("held")
    )
    return (
        select(
            claimed,
            held.c.held_from,
            func.set_config("synchronous_commit", "off", sa.true()).label("async_commit"),
        )
        .select_from(claimed.outerjoin(held, held.c.key == claimed.c.key))
        .order_by(claimed.c.id)
    )


def _without_keys_held_elsewhere(rows: Sequence[Any]) -> list[ClaimedRow]:
    """The claimed rows older than the oldest row of their key held by another relay: publishing a newer
    one could overtake it. The rest of that key waits for a later round."""
    return [row for row in rows if row.held_from is None or row.id < row.held_from]


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
        retention: timedelta | None = None,
        prune_interval: float = 60.0,
        linger: float = 0.02,
        name: str = "relay",
    ) -> None:
        self.database = database
        self.linger = linger
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backlog_interval = backlog_interval
        self.retention = retention
        self.prune_interval = prune_interval
        self.name = name
        self._wake = asyncio.Event()
        self._failures = 0
        self._pg_listener: Any = None
        self._claim_query: Select[*tuple[Any, ...]] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set."""
        database_key = engine_key(self.database.engine)
        _local_wakers[database_key].add(self.wake)
        relay_started(database_key)
        await self._listen()
        last_backlog = last_prune = 0.0
        loaded = False
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
                if self.retention is not None and now - last_prune >= self.prune_interval:
                    last_prune = now
                    try:
                        await self.prune()
                    except Exception:
                        log.warning("outbox relay %s: pruning failed", self.name, exc_info=True)
                if published >= self.batch_size and not self._failures:
                    continue
                loaded, was_loaded = published >= LINGER_AFTER, loaded
                if self.linger > 0 and loaded and was_loaded and not self._failures:
                    # Under load: two rounds in a row found this many rows, so the next one is let fill
                    # for `linger` instead of starting at the first commit (as a Kafka producer's
                    # linger.ms): fewer, larger claims, sends, marks and consumer batches per event. One
                    # such round alone (the rows of a moment's stall) does not make the next ones wait.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.linger)
                    continue
                delay = self._idle_delay()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            _local_wakers[database_key].discard(self.wake)
            relay_stopped(database_key)
            await self._unlisten()

    def _idle_delay(self) -> float:
        """How long to wait for a wake-up before looking again. Commits in this process wake the relay,
        and on PostgreSQL so does NOTIFY from any other writer, so with LISTEN up polling is only a
        safety net; on SQLite it is how commits of other processes (a CLI seeding the database) are seen."""
        if self._failures:
            return float(min(0.1 * 2**self._failures, 5.0))
        if self._pg_listener is not None:
            return max(self.poll_interval, LISTENING_POLL_INTERVAL)
        return self.poll_interval

    async def backlog(self) -> int:
        async with self.database.sessionmaker() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.published_at).is_(None))
            )
        return int(count or 0)

    async def prune(self, now: datetime | None = None) -> int:
        """Delete published rows older than the retention, oldest first; returns how many went.

        Reads the outbox in id order from its oldest row (primary key: no index on `published_at`, which
        the partial pending index made unnecessary) and deletes the rows published before the cutoff. Rows
        still unpublished are kept and stepped over; the first row published after the cutoff ends the
        round, since everything after it was written later. Bounded per round; relays sharing an outbox
        may prune at once (deleting a deleted row does nothing)."""
        if self.retention is None:
            return 0
        cutoff = (now or datetime.now(UTC)) - self.retention
        deleted = 0
        after = 0
        for _ in range(PRUNE_CHUNKS_PER_ROUND):
            async with self.database.sessionmaker() as session, session.begin():
                rows: Sequence[Any] = (
                    await session.execute(
                        select(col(OutboxMessage.id), col(OutboxMessage.published_at))
                        .where(col(OutboxMessage.id) > after)
                        .order_by(col(OutboxMessage.id))
                        .limit(PRUNE_CHUNK)
                    )
                ).all()
                old: list[int] = []
                reached_recent = False
                for row_id, published_at in rows:
                    if published_at is None:
                        continue
                    if as_utc(published_at) >= cutoff:
                        reached_recent = True
                        break
                    old.append(int(row_id))
                if old:
                    await session.execute(delete(OutboxMessage).where(self._ids_in(old)))
            deleted += len(old)
            if reached_recent or len(rows) < PRUNE_CHUNK:
                break
            after = int(rows[-1][0])
        if deleted:
            metrics.OUTBOX_PRUNED.inc(deleted)
        return deleted

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch; returns how many rows were published.

        The claimed rows are all handed to the producer before any acknowledgement is awaited (the
        producer batches them per partition, one request in flight per partition keeps their order),
        then the acknowledged rows are marked in one UPDATE. A row whose send failed is left unpublished
        together with every later row of its key in the batch, even one the broker acknowledged: the next
        round publishes them again, in order, so an older event never ends up marked after a newer one
        of its key (the newer one may reach the topic twice; the consumers' inbox absorbs that).
        """
        async with self.database.sessionmaker() as session, session.begin():
            rows = await self._claim(session)
            if not rows:
                return 0
            results = await self._send_all(rows)
            published, failed, held_back = _settle(rows, results)
            now = datetime.now(UTC)
            await self._mark(session, published, failed, now)
        for topic, count in Counter(row.topic for row in published).items():
            metrics.OUTBOX_PUBLISHED.labels(topic).inc(count)
        for row in published:
            created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
            metrics.OUTBOX_PUBLISH_LATENCY.observe(max(0.0, (now - created).total_seconds()))
        if failed:
            metrics.OUTBOX_PUBLISH_FAILURES.inc(len(failed))
            self._failures += 1
            log.warning(
                "outbox relay %s: %d of %d rows failed to publish, %d later rows of their keys held back",
                self.name,
                len(failed),
                len(rows),
                held_back,
            )
        else:
            self._failures = 0
        return len(published)

    async def _send_all(self, rows: Sequence[ClaimedRow]) -> list[BaseException | None]:
        """Hand every row to the producer, then wait for all acknowledgements: None or the error, per row."""
        futures: list[asyncio.Future[Any] | None] = []
        errors: list[BaseException | None] = []
        for row in rows:
            try:
                futures.append(
                    await self.producer.send(
                        row.topic,
                        row.payload,
                        key=row.key.encode(),
                        headers=[("ce_id", row.event_id.encode()), ("ce_type", row.event_type.encode())],
                    )
                )
                errors.append(None)
            except Exception as exc:  # refused before it was queued (too large, unknown topic, closed)
                futures.append(None)
                errors.append(exc)
        pending = [f for f in futures if f is not None]
        if pending:
            await asyncio.wait(pending)
        for index, future in enumerate(futures):
            if future is not None and future.exception() is not None:
                errors[index] = future.exception()
        return errors

    async def _mark(
        self,
        session: AsyncSession,
        published: Sequence[ClaimedRow],
        failed: Sequence[tuple[ClaimedRow, BaseException]],
        now: datetime,
    ) -> None:
        """One UPDATE for the published rows, one for the failed ones (their attempts and last error)."""
        # The session holds no outbox objects: nothing to synchronise (on PostgreSQL the ORM's default would
        # fetch every marked id back with RETURNING).
        if published:
            await session.execute(
                update(OutboxMessage)
                .where(self._ids_in([row.id for row in published]))
                .values(published_at=now)
                .execution_options(synchronize_session=False)
            )
        if failed:
            await session.execute(
                update(OutboxMessage)
                .where(self._ids_in([row.id for row, _ in failed]))
                .values(attempts=col(OutboxMessage.attempts) + 1, last_error=repr(failed[0][1])[:2000])
                .execution_options(synchronize_session=False)
            )

    def _ids_in(self, ids: list[int]) -> sa.ColumnElement[bool]:
        """`id IN (...)`; on PostgreSQL `id = ANY(:ids)` with one array parameter, so the statement's
        text does not change with the batch's size and asyncpg reuses one prepared statement (an IN list
        of a size not seen before costs a prepare round trip)."""
        if self.database.is_sqlite:
            return col(OutboxMessage.id).in_(ids)
        return col(OutboxMessage.id) == sa.any_(sa.bindparam("ids", ids, type_=ARRAY(sa.Integer)))

    async def _claim(self, session: AsyncSession) -> Sequence[ClaimedRow]:
        if self._claim_query is None:  # built once: building a statement costs more than running it
            query = (
                select(*CLAIMED_COLUMNS)
                .where(col(OutboxMessage.published_at).is_(None))
                .order_by(col(OutboxMessage.id))
                .limit(self.batch_size)
            )
            self._claim_query = query if self.database.is_sqlite else _claim_on_postgresql(query)
        rows = (await session.execute(self._claim_query)).all()
        return rows if self.database.is_sqlite else _without_keys_held_elsewhere(rows)

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
