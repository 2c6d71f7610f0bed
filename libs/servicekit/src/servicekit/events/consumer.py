"""The consumer runner: inbox de-duplication, retries with backoff, dead letters, manual commits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import CloudEvent, spec_for
from contracts.topics import dlq_topic
from servicekit import metrics
from servicekit.db import Database
from servicekit.events.kafka import start_with_retry
from servicekit.events.models import InboxEntry
from servicekit.logging import correlation_id_var

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """What one consumer listens to: its name (also the consumer group) and a handler per event type.

    Topics default to the registered topics of the handled event types.
    """

    name: str
    handlers: Mapping[str, Handler]
    topics: Sequence[str] = field(default_factory=tuple)

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
        self._stop = asyncio.Event()
        self.started = asyncio.Event()  # connected to the broker (the group join may still be running)
        self.assigned = asyncio.Event()  # holds at least one partition: events will be processed
        self.assigned_partitions: set[TopicPartition] = set()

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
            max_poll_records=500,
        )
        consumer.subscribe(topics, listener=_CommitOnRevoke(self))
        if not await start_with_retry(consumer.start, what=f"consumer {self.spec.name}", stop_event=stop):
            return
        self._consumer = consumer
        self.started.set()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    for record in records:
                        if stop.is_set():
                            break
                        try:
                            await self._handle(record)
                        except _Stopping:
                            break
                        self._pending[tp] = self._positions[tp] = record.offset + 1
                    await self.commit()
                self._update_lag(consumer)
        finally:
            with contextlib.suppress(Exception):
                await self.commit()
            self._consumer = None
            await consumer.stop()

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

    def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = self._positions.get(tp)
            if position is not None:
                metrics.CONSUMER_LAG.labels(self.spec.name, tp.topic, str(tp.partition)).set(
                    max(0, highwater - position)
                )

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = CloudEvent.from_json_bytes(record.value or b"")
        except ValidationError as exc:
            # Not a CloudEvent at all: retrying cannot help, so it goes straight to the DLQ.
            await self._dead_letter(record, exc, attempts=1, event_type="malformed")
            return
        handler = self.spec.handlers.get(event.type)
        if handler is None:
            return
        token = correlation_id_var.set(event.correlationid or event.id)
        try:
            await self._handle_with_retries(record, event, handler)
        finally:
            correlation_id_var.reset(token)

    async def _handle_with_retries(
        self, record: ConsumerRecord[bytes, bytes], event: CloudEvent, handler: Handler
    ) -> None:
        attempt = 0
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
