"""The consumer runner: inbox de-duplication, retries with backoff, dead letters, manual commits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy import Insert, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import CloudEvent, spec_for
from contracts.topics import dlq_topic
from servicekit import metrics
from servicekit.db import Database, UTCDateTime
from servicekit.events.kafka import start_with_retry
from servicekit.events.models import InboxEntry
from servicekit.gcpause import collect_young, cyclic_gc_paused
from servicekit.logging import correlation_id_var

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
ManyHandlerFunction = Callable[[AsyncSession, Sequence[CloudEvent]], Awaitable[None]]

INBOX_LOOKUP_CHUNK = 500

INBOX = InboxEntry.__table__  # type: ignore[attr-defined]


def _pg_add_to_inbox() -> Insert:
    """INSERT INTO inbox SELECT :consumer, u.event_id, u.event_type, :now FROM unnest(:ids, :types) u
    ON CONFLICT DO NOTHING RETURNING event_id."""
    rows = (
        func.unnest(
            sa.bindparam("ids", type_=ARRAY(sa.String())), sa.bindparam("types", type_=ARRAY(sa.String()))
        )
        .table_valued("event_id", "event_type")
        .render_derived(name="new_rows")
    )
    source = select(
        sa.bindparam("consumer", type_=sa.String()),
        rows.c.event_id,
        rows.c.event_type,
        sa.bindparam("now", type_=UTCDateTime()),
    )
    return (
        pg_insert(INBOX)
        .from_select(["consumer", "event_id", "event_type", "processed_at"], source)
        .on_conflict_do_nothing()
        .returning(INBOX.c.event_id)
    )


def _sqlite_add_to_inbox() -> Insert:
    """INSERT INTO inbox SELECT :consumer, json_extract(value, '$[0]'), json_extract(value, '$[1]'), :now
    FROM json_each(:rows) WHERE 1 ON CONFLICT DO NOTHING RETURNING event_id, where `rows` is a JSON array
    of [event_id, event_type] pairs: one statement text for any batch size, compiled once (a multi-row
    VALUES of a new size was compiled again for every batch: most of the consumer's CPU on SQLite)."""
    rows = func.json_each(sa.bindparam("rows", type_=sa.String())).table_valued("value")
    source = select(
        sa.bindparam("consumer", type_=sa.String()),
        func.json_extract(rows.c.value, "$[0]"),
        func.json_extract(rows.c.value, "$[1]"),
        sa.bindparam("now", type_=UTCDateTime()),
    ).where(sa.true())  # SQLite needs a WHERE to tell the SELECT's end from the upsert clause
    return (
        sqlite_insert(INBOX)
        .from_select(["consumer", "event_id", "event_type", "processed_at"], source)
        .on_conflict_do_nothing()
        .returning(INBOX.c.event_id)
    )


_PG_ADD_TO_INBOX = _pg_add_to_inbox()
_SQLITE_ADD_TO_INBOX = _sqlite_add_to_inbox()


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a fetched batch is decoded and handled
    (`servicekit.gcpause`); a batch that ends while others of the process keep the pause collects the
    young generations when they are due, so overlapping batches never keep them uncollected for long."""
    try:
        with cyclic_gc_paused():
            yield
    finally:
        collect_young()


@dataclass(frozen=True)
class BatchHandler:
    """A handler in batch form: `handle_many(session, events)` gets consecutive events of one type from a
    fetched batch (in partition order) and may fold them into a few rows. It is still a `Handler`: called
    with one event when the consumer isolates events one by one after a failed batch."""

    handle_many: ManyHandlerFunction

    async def __call__(self, session: AsyncSession, event: CloudEvent) -> None:
        await self.handle_many(session, [event])


def handle_many(function: ManyHandlerFunction) -> BatchHandler:
    """Register `function(session, events)` as a batch handler (decorator or call)."""
    return BatchHandler(function)


@dataclass(frozen=True)
class ConsumerSpec:
    """What one consumer listens to: its name (also the consumer group) and a handler per event type.

    Topics default to the registered topics of the handled event types. `max_batch` bounds the records
    one fetch hands over (aiokafka's `max_poll_records`), which is the batch handled in one transaction:
    a high-volume consumer folding batches (`handle_many`) spreads each batch's fixed cost (statements,
    commit, offset commit) over more events with a larger one.
    """

    name: str
    handlers: Mapping[str, Handler]
    topics: Sequence[str] = field(default_factory=tuple)
    max_batch: int = 500
    # How a record's value becomes a CloudEvent (raises pydantic's ValidationError when it is not one,
    # which dead-letters it as malformed). A consumer may decode its hot event type in one pass into a
    # subclass whose `data` is already checked, as long as it judges every record as
    # `CloudEvent.from_json_bytes` does.
    decode: Callable[[bytes], CloudEvent] = CloudEvent.from_json_bytes

    def subscribed_topics(self) -> list[str]:
        if self.topics:
            return list(dict.fromkeys(self.topics))
        return sorted({spec_for(event_type).topic for event_type in self.handlers})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff: float = 0.1
    backoff_max: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff * 2 ** (attempt - 1), self.backoff_max))


class _Stopping(Exception):
    pass


class _BatchFailed(Exception):
    """A plain handler raised inside a batch transaction; `__cause__` is what it raised."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: EventConsumer) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.runner.commit(only=set(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("consumer %s assigned %s", self.runner.spec.name, sorted(map(str, assigned)))
        self.runner.assigned_partitions = set(assigned)
        if assigned:
            self.runner.assigned.set()


class EventConsumer:
    """Runs one consumer group member. The handler's writes and the inbox row commit together;
    the offset is committed after that; a failing event is retried, then dead-lettered."""

    def __init__(
        self,
        spec: ConsumerSpec,
        database: Database,
        *,
        bootstrap_servers: str,
        dlq_producer: AIOKafkaProducer,
        retry: RetryPolicy | None = None,
        fetch_max_wait_ms: int = 20,
        session_timeout_ms: int = 10_000,
        group_id: str | None = None,
    ) -> None:
        self.spec = spec
        self.database = database
        self.bootstrap_servers = bootstrap_servers
        self.dlq_producer = dlq_producer
        self.retry = retry or RetryPolicy()
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.session_timeout_ms = session_timeout_ms
        self.group_id = group_id or spec.name
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._commit_lock = asyncio.Lock()
        self._committing: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.started = asyncio.Event()  # connected to the broker (the group join may still be running)
        self.assigned = asyncio.Event()  # holds at least one partition: events will be processed
        self.assigned_partitions: set[TopicPartition] = set()
        self._behind: dict[TopicPartition, int] = {}

    @property
    def backlog(self) -> int:
        """Events known to be waiting in the broker after the batch being handled (from each partition's
        high watermark at its last fetch): 0 when this member has read everything it knew of. A handler
        reads it to tell whether newer events are already on their way."""
        assigned = self.assigned_partitions
        return sum(n for tp, n in self._behind.items() if tp in assigned)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then commit what was processed and leave the group."""
        self._stop = stop
        topics = self.spec.subscribed_topics()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{self.spec.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            # The embedded broker holds a group join for about half the session timeout.
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.session_timeout_ms // 4),
            max_poll_records=self.spec.max_batch,
        )
        consumer.subscribe(topics, listener=_CommitOnRevoke(self))
        if not await start_with_retry(consumer.start, what=f"consumer {self.spec.name}", stop_event=stop):
            return
        self._consumer = consumer
        self.started.set()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                if batches:
                    await self._process(batches)
                else:
                    await self._rewind_positions_past_the_end(consumer)
                self._commit_in_background()
                self._update_lag(consumer)
        finally:
            with contextlib.suppress(Exception):
                if self._committing is not None:
                    await self._committing
            with contextlib.suppress(Exception):
                await self.commit()
            self._consumer = None
            await consumer.stop()

    def _commit_in_background(self) -> None:
        """Commit the processed offsets without holding up the next batch: the next fetch and its handling
        overlap the broker's round trip. One commit at a time; offsets processed meanwhile go with the next
        one (or with the commit on revoke or stop). An offset is only ever committed after its events'
        transaction, as before; a commit lost in a crash means events come again, which the inbox absorbs."""
        if self._pending and (self._committing is None or self._committing.done()):
            self._committing = asyncio.create_task(self._commit_logged(), name=f"commit-{self.spec.name}")

    async def _commit_logged(self) -> None:
        try:
            await self.commit()
        except Exception as exc:  # the offsets stay pending and go with the next commit
            log.warning("consumer %s: offset commit failed: %s", self.spec.name, exc)

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        async with self._commit_lock:
            offsets = {tp: off for tp, off in self._pending.items() if only is None or tp in only}
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                # Uncommitted events come again; the inbox makes that harmless.
                log.warning("consumer %s: offset commit failed: %s", self.spec.name, exc)
            for tp in offsets:
                if self._pending.get(tp) == offsets[tp]:
                    del self._pending[tp]

    async def _rewind_positions_past_the_end(self, consumer: AIOKafkaConsumer) -> None:
        """A committed offset past the end of its partition (the broker lost the partition's records:
        an in-memory broker restarted, a durable one's data removed) would wait forever, because the
        embedded broker answers such a fetch with nothing rather than OFFSET_OUT_OF_RANGE. Such a
        partition is read again from its earliest offset; the inbox skips what was already handled."""
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            if position > highwater:
                log.warning(
                    "consumer %s: position %d of %s is past the partition's end (%d), reading from the start",
                    self.spec.name,
                    position,
                    tp,
                    highwater,
                )
                await consumer.seek_to_beginning(tp)
                self._positions.pop(tp, None)

    def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = self._positions.get(tp)
            if position is not None:
                self._behind[tp] = max(0, highwater - position)
                metrics.CONSUMER_LAG.labels(self.spec.name, tp.topic, str(tp.partition)).set(self._behind[tp])

    async def _process(
        self, batches: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Handle a fetched batch in one transaction; if that fails, handle its events one per transaction,
        so a failing event is isolated and follows the retry and dead-letter path alone."""
        consumer = self._consumer
        if consumer is not None:
            for tp, records in batches.items():
                highwater = consumer.highwater(tp)
                if records and highwater is not None:
                    self._behind[tp] = max(0, highwater - (records[-1].offset + 1))
        try:
            with _no_cyclic_gc():
                await self._handle_batch(batches)
        except _Stopping:
            return
        except Exception as exc:
            # The event whose handler raised (when a plain handler did) has had its first attempt.
            failed_event = exc.event_id if isinstance(exc, _BatchFailed) else None
            cause = exc.__cause__ if isinstance(exc, _BatchFailed) else exc
            log.warning(
                "consumer %s: a batch of %d events failed (%s), handling them one by one",
                self.spec.name,
                sum(len(records) for records in batches.values()),
                cause,
            )
            for tp, records in batches.items():
                for record in records:
                    if self._stop.is_set():
                        return
                    try:
                        await self._handle(record, failed_once=failed_event)
                    except _Stopping:
                        return
                    self._pending[tp] = self._positions[tp] = record.offset + 1
            return
        for tp, records in batches.items():
            if records:
                self._pending[tp] = self._positions[tp] = records[-1].offset + 1

    async def _handle_batch(
        self, batches: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        malformed: list[tuple[ConsumerRecord[bytes, bytes], ValidationError]] = []
        handled: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]] = []
        decode = self.spec.decode
        for records in batches.values():
            for record in records:
                try:
                    event = decode(record.value or b"")
                except ValidationError as exc:
                    malformed.append((record, exc))
                    continue
                if event.type in self.spec.handlers:
                    handled.append((record, event))
        duplicates: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]] = []
        if handled:
            duplicates = await self._apply_batch(handled)
        for (topic, event_type), count in Counter((r.topic, e.type) for r, e in handled).items():
            metrics.EVENTS_PROCESSED.labels(self.spec.name, topic, event_type).inc(count)
        for topic, count in Counter(r.topic for r, _ in duplicates).items():
            metrics.EVENTS_DUPLICATE.labels(self.spec.name, topic).inc(count)
        for record, error in malformed:
            # Not a CloudEvent at all: retrying cannot help, so it goes straight to the DLQ.
            await self._dead_letter(record, error, attempts=1, event_type="malformed")

    async def _apply_batch(
        self, handled: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]]
    ) -> list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]]:
        """Run the handlers of a batch and write its inbox rows in one transaction. Removes the events the
        inbox already holds (or that came twice in the batch) from `handled` and returns them."""
        duplicates: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]] = []
        unique: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]] = []
        ids: set[str] = set()
        for record, event in handled:
            if event.id in ids:
                duplicates.append((record, event))  # the same event twice in one fetch
            else:
                ids.add(event.id)
                unique.append((record, event))
        async with self.database.session() as session:
            # The inbox rows go in first, skipping the events it already holds; the rows it inserted name
            # the events to handle. A concurrent consumer's uncommitted row of the same event makes this
            # wait for its outcome (a unique-key conflict), so an event is never handled twice.
            new_ids = await self._add_to_inbox(session, [event for _, event in unique])
            fresh = [(record, event) for record, event in unique if event.id in new_ids]
            duplicates += [(record, event) for record, event in unique if event.id not in new_ids]
            events = [event for _, event in fresh]
            start = 0
            while start < len(events):
                handler = self.spec.handlers[events[start].type]
                token = correlation_id_var.set(events[start].correlationid or events[start].id)
                try:
                    if isinstance(handler, BatchHandler):
                        end = start + 1
                        while end < len(events) and events[end].type == events[start].type:
                            end += 1
                        await handler.handle_many(session, events[start:end])
                        start = end
                    else:
                        try:
                            await handler(session, events[start])
                        except Exception as exc:
                            raise _BatchFailed(events[start].id) from exc
                        start += 1
                finally:
                    correlation_id_var.reset(token)
        handled[:] = fresh
        return duplicates

    async def _add_to_inbox(self, session: AsyncSession, events: list[CloudEvent]) -> set[str]:
        """Insert the inbox rows of `events` (ids unique), skipping those already there; returns the ids
        inserted. One statement per chunk, which replaces a lookup and an insert: on PostgreSQL its text
        does not depend on the count (arrays unnested), so asyncpg keeps one prepared statement."""
        inserted: set[str] = set()
        now = datetime.now(UTC)
        connection = await session.connection()
        for start in range(0, len(events), INBOX_LOOKUP_CHUNK):
            chunk = events[start : start + INBOX_LOOKUP_CHUNK]
            if self.database.is_sqlite:
                result = await connection.execute(
                    _SQLITE_ADD_TO_INBOX,
                    {
                        "consumer": self.spec.name,
                        "rows": json.dumps([[e.id, e.type] for e in chunk]),
                        "now": now,
                    },
                )
            else:
                result = await connection.execute(
                    _PG_ADD_TO_INBOX,
                    {
                        "consumer": self.spec.name,
                        "ids": [e.id for e in chunk],
                        "types": [e.type for e in chunk],
                        "now": now,
                    },
                )
            inserted.update(result.scalars().all())
        return inserted

    async def _handle(self, record: ConsumerRecord[bytes, bytes], *, failed_once: str | None = None) -> None:
        try:
            event = self.spec.decode(record.value or b"")
        except ValidationError as exc:
            # Not a CloudEvent at all: retrying cannot help, so it goes straight to the DLQ.
            await self._dead_letter(record, exc, attempts=1, event_type="malformed")
            return
        handler = self.spec.handlers.get(event.type)
        if handler is None:
            return
        token = correlation_id_var.set(event.correlationid or event.id)
        try:
            if event.id == failed_once:
                metrics.EVENTS_FAILED.labels(self.spec.name, record.topic, event.type).inc()
            await self._handle_with_retries(record, event, handler, attempts=int(event.id == failed_once))
        finally:
            correlation_id_var.reset(token)

    async def _handle_with_retries(
        self, record: ConsumerRecord[bytes, bytes], event: CloudEvent, handler: Handler, *, attempts: int = 0
    ) -> None:
        attempt = attempts
        while True:
            attempt += 1
            try:
                outcome = await self._apply_once(event, handler)
            except Exception as exc:
                metrics.EVENTS_FAILED.labels(self.spec.name, record.topic, event.type).inc()
                if await self._already_processed(event):
                    outcome = "duplicate"
                elif attempt > self.retry.max_retries:
                    log.error(
                        "consumer %s: event %s failed %d times, dead-lettering",
                        self.spec.name,
                        event.id,
                        attempt,
                        exc_info=exc,
                    )
                    await self._dead_letter(record, exc, attempts=attempt, event_type=event.type)
                    return
                else:
                    log.warning(
                        "consumer %s: event %s failed (attempt %d): %s",
                        self.spec.name,
                        event.id,
                        attempt,
                        exc,
                    )
                    await self._sleep(self.retry.delay(attempt))
                    continue
            if outcome == "duplicate":
                metrics.EVENTS_DUPLICATE.labels(self.spec.name, record.topic).inc()
            else:
                metrics.EVENTS_PROCESSED.labels(self.spec.name, record.topic, event.type).inc()
            return

    async def _apply_once(self, event: CloudEvent, handler: Handler) -> str:
        async with self.database.session() as session:
            if await session.get(InboxEntry, (self.spec.name, event.id)) is not None:
                return "duplicate"
            await handler(session, event)
            session.add(
                InboxEntry(
                    consumer=self.spec.name,
                    event_id=event.id,
                    event_type=event.type,
                    processed_at=datetime.now(UTC),
                )
            )
            await session.flush()
        return "processed"

    async def _already_processed(self, event: CloudEvent) -> bool:
        try:
            async with self.database.sessionmaker() as session:
                return await session.get(InboxEntry, (self.spec.name, event.id)) is not None
        except Exception:
            return False

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], exc: BaseException, *, attempts: int, event_type: str
    ) -> None:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq_")]
        headers += [
            ("error", error[:4000].encode()),
            ("error_type", type(exc).__name__.encode()),
            ("original_topic", record.topic.encode()),
            ("original_partition", str(record.partition).encode()),
            ("original_offset", str(record.offset).encode()),
            ("attempts", str(attempts).encode()),
            ("consumer", self.spec.name.encode()),
            ("event_type", event_type.encode()),
            ("failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.dlq_producer.send_and_wait(
                    dlq_topic(record.topic), record.value, key=record.key, headers=headers
                )
                break
            except KafkaError as send_error:
                log.warning("consumer %s: DLQ publish failed: %s", self.spec.name, send_error)
                await self._sleep(self.retry.delay(attempt))
        metrics.EVENTS_DEAD_LETTERED.labels(self.spec.name, record.topic).inc()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return
        raise _Stopping
