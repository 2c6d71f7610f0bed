"""The modes of the `event_pipeline` scenario (raw aiokafka, the servicekit pipeline on SQLite or
PostgreSQL), its recorder and one measured segment. Not a scenario itself (the runner skips `_` files)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts import CloudEvent
from servicekit.db import Database, WalCheckpointer, asyncpg_dsn
from servicekit.events import ConsumerSpec, EventConsumer, OutboxRelay, outbox

try:
    from servicekit.events import handle_many
except ImportError:  # servicekit before batch handlers: lets the same scenario measure it (before/after)
    handle_many = None  # type: ignore[assignment]
from servicekit.events.kafka import ensure_topics, make_producer, with_dead_letters
from servicekit.migrations import create_platform_tables

try:
    from servicekit.migrations import create_pending_outbox_indexes
except ImportError:  # servicekit before the partial indexes (before/after runs)
    create_pending_outbox_indexes = None  # type: ignore[assignment]
from servicekit.settings import ServiceSettings

EVENT_TYPE = "ecom.bench.happened.v1"
SOURCE = "/bench"
DATABASE_URL_ENV = "BENCH_DATABASE_URL"
MARK = "bench.event_pipeline.mark"

START_TIMEOUT_S = 30.0
SEND_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
SETTLE_S = 0.5


@dataclass(frozen=True)
class Parameters:
    throughput_events: int  # per mode and writer count, split into `rounds`
    writers: tuple[int, ...]  # concurrent writers in the throughput phase
    rates_eps: tuple[float, ...]  # offered rates of the fixed-rate phase, ascending
    rate_seconds: float  # how long each fixed rate is offered
    sustained_rate_eps: float  # PostgreSQL pipeline only: the long fixed-rate run
    sustained_seconds: float
    rate_writers: int = 32  # concurrent writers sharing a fixed rate
    lag_interval_s: float = 0.5
    warmup_events: int = 50
    rounds: int = 2
    partitions: int = 3
    keys: int = 50
    fetch_max_wait_ms: int = 20
    max_poll_records: int = 500
    relay_batch_size: int = 200
    relay_poll_interval_s: float = 0.05
    relay_linger_s: float = ServiceSettings().outbox_linger_ms / 1000  # the services' default
    segment_timeout_s: float = 60.0
    drain_timeout_s: float = 30.0  # after a fixed-rate run, how long its backlog may take to drain
    settle_s: float = SETTLE_S


EFFECTS = Table(
    "bench_effects",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
)
_STATE_ROW = insert(EFFECTS)  # a lean transaction's statement: built once, as a service's would be


# --- recording ---------------------------------------------------------------------------------


@dataclass
class Sample:
    index: int
    written_ns: int
    processed_ns: int


class Recorder:
    """Collects (written, processed) per event, per segment; wakes the segment's waiter when complete."""

    def __init__(self) -> None:
        self.samples: dict[str, list[Sample]] = defaultdict(list)
        self.duplicates: dict[str, int] = defaultdict(int)
        self._seen: dict[str, set[int]] = defaultdict(set)
        self._expected: dict[str, int] = {}
        self._complete: dict[str, asyncio.Event] = {}
        # Pipeline only: when the writer's commit returned and when the consumer's handler began.
        self.write_committed_ns: dict[str, dict[int, int]] = defaultdict(dict)
        self.handler_started_ns: dict[str, dict[int, int]] = defaultdict(dict)

    def new_segment_id(self) -> str:
        return f"s{len(self._expected):03d}"

    def expect(self, segment: str, count: int) -> asyncio.Event:
        self._expected[segment] = count
        self._complete[segment] = asyncio.Event()
        return self._complete[segment]

    def record(self, segment: str, index: int, written_ns: int, processed_ns: int) -> None:
        if index in self._seen[segment]:
            self.duplicates[segment] += 1
            return
        self._seen[segment].add(index)
        self.samples[segment].append(Sample(index, written_ns, processed_ns))
        if len(self._seen[segment]) >= self._expected.get(segment, 1 << 62):
            self._complete[segment].set()

    def expect_fewer(self, segment: str, count: int) -> None:
        """The writer stopped early: the segment is complete when `count` events were handled."""
        self._expected[segment] = count
        if len(self._seen[segment]) >= count:
            self._complete[segment].set()

    def processed(self, segment: str) -> int:
        return len(self._seen[segment])

    @contextlib.contextmanager
    def observing_commits(self) -> Iterator[None]:
        """Record pipeline events at the moment the consumer's transaction (handler writes + inbox row)
        has committed: the handler leaves a mark in the session, this after_commit hook reads it."""

        def after_commit(session: Session) -> None:
            marks = session.info.pop(MARK, None)
            if marks:
                committed_ns = time.perf_counter_ns()
                for segment, index, written_ns in marks:
                    self.record(segment, index, written_ns, committed_ns)

        def after_rollback(session: Session) -> None:
            session.info.pop(MARK, None)

        sa_event.listen(Session, "after_commit", after_commit)
        sa_event.listen(Session, "after_rollback", after_rollback)
        try:
            yield
        finally:
            sa_event.remove(Session, "after_commit", after_commit)
            sa_event.remove(Session, "after_rollback", after_rollback)


def make_event(segment: str, index: int, keys: int, written_ns: int) -> CloudEvent:
    """The same business-like event for both modes; `t0` is the writer's clock just before the write."""
    return CloudEvent(
        source=SOURCE,
        type=EVENT_TYPE,
        subject=f"agg-{index % keys:03d}",
        sequence=index // keys + 1,
        data={
            "segment": segment,
            "index": index,
            "t0": written_ns,
            "order_id": f"ord-{index:08d}",
            "amount_cents": 1999 + index % 100,
            "currency": "EUR",
            "items": 1 + index % 5,
        },
    )


def headers_for(event: CloudEvent) -> list[tuple[str, bytes]]:
    return [("ce_id", event.id.encode()), ("ce_type", event.type.encode())]  # as the relay sends


# --- the two modes ----------------------------------------------------------------------------


class Mode(Protocol):
    name: str
    label: str
    tasks: list[asyncio.Task[None]]

    async def start(self) -> None: ...
    async def send(self, segment: str, index: int) -> None: ...
    def assigned_partitions(self) -> int: ...
    async def stop(self) -> None: ...


class RawMode:
    """aiokafka alone: send_and_wait one event at a time; a group consumer committing after each batch."""

    def __init__(
        self, bootstrap: str, settings: ServiceSettings, params: Parameters, recorder: Recorder
    ) -> None:
        self.name = "raw"
        self.label = "raw aiokafka"
        self.bootstrap = bootstrap
        self.settings = settings
        self.params = params
        self.recorder = recorder
        self.topic = f"bench.raw.{uuid.uuid4().hex[:10]}"
        self.tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        await asyncio.wait_for(
            ensure_topics(self.bootstrap, [self.topic], partitions=self.params.partitions), START_TIMEOUT_S
        )
        self._producer = make_producer(self.settings, client_id="bench-raw")
        await asyncio.wait_for(self._producer.start(), START_TIMEOUT_S)
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=f"bench-raw-{uuid.uuid4().hex[:10]}",
            client_id="bench-raw",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.params.fetch_max_wait_ms,
            max_poll_records=self.params.max_poll_records,
        )
        await asyncio.wait_for(self._consumer.start(), START_TIMEOUT_S)
        self.tasks.append(asyncio.create_task(self._consume(self._consumer), name="raw-consumer"))

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    data = json.loads(record.value or b"{}")["data"]
                    self.recorder.record(data["segment"], data["index"], data["t0"], time.perf_counter_ns())
                # Commit after each partition's batch, as EventConsumer does.
                await consumer.commit({tp: records[-1].offset + 1})

    async def send(self, segment: str, index: int) -> None:
        assert self._producer is not None
        written_ns = time.perf_counter_ns()
        event = make_event(segment, index, self.params.keys, written_ns)
        await self._producer.send_and_wait(
            self.topic, event.to_json_bytes(), key=event.subject.encode(), headers=headers_for(event)
        )

    def assigned_partitions(self) -> int:
        return len(self._consumer.assignment()) if self._consumer is not None else 0

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), STOP_TIMEOUT_S)
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._consumer.stop(), STOP_TIMEOUT_S)
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), STOP_TIMEOUT_S)


def _create_tables(connection: Connection) -> None:
    # The platform tables exactly as every service's first migration creates them, plus a handler table.
    with Operations.context(MigrationContext.configure(connection)):
        create_platform_tables()
        if create_pending_outbox_indexes is not None:
            create_pending_outbox_indexes()
    EFFECTS.create(connection)


async def _execute_admin(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncio.wait_for(asyncpg.connect(asyncpg_dsn(url)), START_TIMEOUT_S)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class PipelineMode:
    """servicekit: outbox.add in the writer's transaction, OutboxRelay, EventConsumer with its inbox."""

    def __init__(
        self,
        name: str,
        label: str,
        database_url: str,
        bootstrap: str,
        settings: ServiceSettings,
        params: Parameters,
        recorder: Recorder,
        *,
        admin_url: str | None = None,
    ) -> None:
        self.name = name
        self.recorder = recorder
        self.label = label
        self.database_url = database_url
        self.admin_url = admin_url  # PostgreSQL: the server database this one was created from
        self.bootstrap = bootstrap
        self.settings = settings
        self.params = params
        self.topic = f"bench.{name}.{uuid.uuid4().hex[:10]}"
        self.tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._database: Database | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: EventConsumer | None = None
        self._created_database = False

    @classmethod
    def postgresql(
        cls, base_url: str, bootstrap: str, settings: ServiceSettings, params: Parameters, recorder: Recorder
    ) -> PipelineMode:
        database = f"bench_{uuid.uuid4().hex[:12]}"
        url = make_url(base_url).set(database=database).render_as_string(hide_password=False)
        return cls(
            "pipeline_postgresql",
            "pipeline (PostgreSQL)",
            url,
            bootstrap,
            settings,
            params,
            recorder,
            admin_url=base_url,
        )

    async def start(self) -> None:
        if self.admin_url is not None:
            await _execute_admin(self.admin_url, f'CREATE DATABASE "{make_url(self.database_url).database}"')
            self._created_database = True
        self._database = Database(self.database_url)
        async with self._database.engine.begin() as connection:
            await connection.run_sync(_create_tables)
        await asyncio.wait_for(
            ensure_topics(self.bootstrap, with_dead_letters([self.topic]), partitions=self.params.partitions),
            START_TIMEOUT_S,
        )
        self._producer = make_producer(self.settings, client_id=f"bench-{self.name}")
        await asyncio.wait_for(self._producer.start(), START_TIMEOUT_S)
        relay = OutboxRelay(
            self._database,
            self._producer,
            batch_size=self.params.relay_batch_size,
            poll_interval=self.params.relay_poll_interval_s,
            linger=self.params.relay_linger_s,
            name=f"bench-{self.name}",
        )
        self._consumer = EventConsumer(
            ConsumerSpec(
                name=f"bench-{self.name}-{self.topic}",
                handlers={EVENT_TYPE: handle_many(self.handle) if handle_many else self.handle_one},
                topics=[self.topic],
            ),
            self._database,
            bootstrap_servers=self.bootstrap,
            dlq_producer=self._producer,
            fetch_max_wait_ms=self.params.fetch_max_wait_ms,
        )
        self.tasks.append(asyncio.create_task(relay.run(self._stop), name=f"{self.name}-relay"))
        checkpointer = WalCheckpointer.for_url(self.database_url)  # as a service runs it (servicekit.app)
        if checkpointer is not None:
            self.tasks.append(asyncio.create_task(checkpointer.run(self._stop), name=f"{self.name}-wal"))
        self.tasks.append(asyncio.create_task(self._consumer.run(self._stop), name=f"{self.name}-consumer"))
        await asyncio.wait_for(self._consumer.started.wait(), START_TIMEOUT_S)

    async def handle(self, session: AsyncSession, events: Sequence[CloudEvent]) -> None:
        """A projection-style batch handler (`handle_many`): one row per event, written in one multi-row
        INSERT in the same transaction as the batch's inbox rows."""
        started_ns = time.perf_counter_ns()
        await session.execute(
            insert(EFFECTS), [{"event_id": e.id, "key": e.subject, "seq": e.sequence or 0} for e in events]
        )
        marks = session.info.setdefault(MARK, [])
        for event in events:
            segment, index = event.data["segment"], event.data["index"]
            self.recorder.handler_started_ns[segment].setdefault(index, started_ns)
            marks.append((segment, index, event.data["t0"]))

    async def handle_one(self, session: AsyncSession, event: CloudEvent) -> None:
        await self.handle(session, [event])

    async def send(self, segment: str, index: int) -> None:
        """A writer's transaction: its outbox row in a lean transaction (`Database.transaction()`)."""
        assert self._database is not None
        if not hasattr(self._database, "transaction"):  # servicekit before lean transactions (before/after)
            await self.send_in_session(segment, index)
            return
        async with self._database.transaction() as transaction:
            written_ns = time.perf_counter_ns()
            await outbox.add(
                transaction, make_event(segment, index, self.params.keys, written_ns), topic=self.topic
            )
        self.recorder.write_committed_ns[segment][index] = time.perf_counter_ns()

    async def send_in_session(self, segment: str, index: int) -> None:
        """A writer's transaction as most service code writes: its outbox row in a `Database.session()`."""
        assert self._database is not None
        async with self._database.session() as session:
            written_ns = time.perf_counter_ns()
            await outbox.add(
                session, make_event(segment, index, self.params.keys, written_ns), topic=self.topic
            )
        self.recorder.write_committed_ns[segment][index] = time.perf_counter_ns()

    async def write_state_only(self, index: int) -> None:
        """The writer's transaction without its event: one row in a lean transaction that commits, a state
        change alone. What the database allows before the outbox adds anything."""
        assert self._database is not None
        if not hasattr(self._database, "transaction"):
            await self.write_state_only_in_session(index)
            return
        async with self._database.transaction() as transaction:
            await transaction.execute(
                _STATE_ROW, {"event_id": f"state-{index}", "key": "state", "seq": index}
            )

    async def write_state_only_in_session(self, index: int) -> None:
        """The same in a session: what the database and SQLAlchemy's session allow."""
        assert self._database is not None
        async with self._database.session() as session:
            await session.execute(insert(EFFECTS).values(event_id=f"state-{index}", key="state", seq=index))

    def assigned_partitions(self) -> int:
        return len(self._consumer.assigned_partitions) if self._consumer is not None else 0

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), STOP_TIMEOUT_S)
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), STOP_TIMEOUT_S)
        if self._database is not None:
            await self._database.dispose()
        if self._created_database and self.admin_url is not None:
            name = make_url(self.database_url).database
            await _execute_admin(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class SessionWriterView:
    """A pipeline mode's relay and consumer with its writers in a `Database.session()` each, as most
    service code writes (the mode itself writes in lean transactions): measured beside it, same pipeline."""

    def __init__(self, pipeline: PipelineMode) -> None:
        self.pipeline = pipeline
        self.name = f"{pipeline.name}_session"
        self.label = f"{pipeline.label}, session writer"

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return self.pipeline.tasks

    async def start(self) -> None:
        return None  # the pipeline's own start

    async def send(self, segment: str, index: int) -> None:
        await self.pipeline.send_in_session(segment, index)

    async def write_state_only(self, index: int) -> None:
        await self.pipeline.write_state_only_in_session(index)

    def assigned_partitions(self) -> int:
        return self.pipeline.assigned_partitions()

    async def stop(self) -> None:
        return None  # the pipeline's own stop


# --- driving ----------------------------------------------------------------------------------


@dataclass
class Segment:
    mode: str
    phase: str
    round: int
    name: str
    count: int
    offered_rate_eps: float | None
    writers: int = 1
    written: int = 0
    complete: bool = True
    send_duration_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time (all threads) from the first write to the last handled
    samples: list[Sample] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    lag: list[tuple[float, int, int]] = field(default_factory=list)  # (s since start, written, handled)

    @property
    def span_s(self) -> float:
        """First written to last processed."""
        first = min(s.written_ns for s in self.samples)
        last = max(s.processed_ns for s in self.samples)
        return (last - first) / 1e9

    def latencies_ms(self) -> list[float]:
        return [(s.processed_ns - s.written_ns) / 1e6 for s in self.samples]


def _check_alive(mode: Mode) -> None:
    for task in mode.tasks:
        if task.done():
            exc = task.exception() if not task.cancelled() else None
            raise RuntimeError(f"{mode.label}: {task.get_name()} stopped early: {exc!r}")


async def run_segment(
    mode: Mode,
    recorder: Recorder,
    *,
    phase: str,
    round_no: int,
    count: int,
    rate: float | None,
    timeout: float,
    writers: int = 1,
    write_for_s: float | None = None,
    lag_interval_s: float = 0.0,
    must_complete: bool = True,
) -> Segment:
    """`writers` concurrent writers write `count` events (at `rate` events/s overall, or as fast as they
    can), stopping early after `write_for_s`; then wait up to `timeout` for every written event to be
    handled. With `lag_interval_s`, (time, written, handled) is sampled that often."""
    # The event carries a short fixed-width segment id, so every mode sends payloads of the same size.
    name = recorder.new_segment_id()
    segment = Segment(mode.name, phase, round_no, name, count, rate, writers=writers)
    complete = recorder.expect(name, count)
    started = time.perf_counter()
    cpu_started = time.process_time()
    next_index = iter(range(count))

    async def writer() -> None:
        # Each writer takes the next index when its previous write returned; with a rate, an index is
        # not written before its slot (started + index / rate), so a slow write delays only its writer.
        for index in next_index:
            if write_for_s is not None and time.perf_counter() - started > write_for_s:
                return
            if rate:
                delay = started + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.wait_for(mode.send(name, index), SEND_TIMEOUT_S)
            segment.written += 1

    async def sample_lag() -> None:
        while True:
            segment.lag.append((time.perf_counter() - started, segment.written, recorder.processed(name)))
            await asyncio.sleep(lag_interval_s)

    sampler = asyncio.create_task(sample_lag()) if lag_interval_s > 0 else None
    try:
        await asyncio.gather(*(writer() for _ in range(max(1, writers))))
        segment.send_duration_s = time.perf_counter() - started
        if segment.written < count:
            recorder.expect_fewer(name, segment.written)
        deadline = time.monotonic() + timeout
        while not complete.is_set():
            _check_alive(mode)
            if time.monotonic() > deadline:
                if must_complete:
                    raise TimeoutError(
                        f"{mode.label}: {recorder.processed(name)} of {segment.written} events "
                        f"processed within {timeout:.0f}s"
                    )
                segment.complete = False
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(complete.wait(), 0.5)
    finally:
        segment.cpu_s = time.process_time() - cpu_started
        if sampler is not None:
            sampler.cancel()
            segment.lag.append((time.perf_counter() - started, segment.written, recorder.processed(name)))
    segment.samples = list(recorder.samples[name])
    committed = recorder.write_committed_ns.get(name, {})
    handled = recorder.handler_started_ns.get(name, {})
    if committed and handled:
        stages: dict[str, list[float]] = {"write": [], "deliver": [], "consume": []}
        for sample in segment.samples:
            if sample.index in committed and sample.index in handled:
                stages["write"].append((committed[sample.index] - sample.written_ns) / 1e6)
                stages["deliver"].append((handled[sample.index] - committed[sample.index]) / 1e6)
                stages["consume"].append((sample.processed_ns - handled[sample.index]) / 1e6)
        segment.stages_ms = stages
    return segment


async def wait_assigned(mode: Mode, partitions: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while mode.assigned_partitions() < partitions:
        _check_alive(mode)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{mode.label}: consumer not assigned {partitions} partitions in {START_TIMEOUT_S}s"
            )
        await asyncio.sleep(0.05)
