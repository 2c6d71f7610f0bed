"""Event pipeline: outbox -> relay -> broker -> consumer with inbox, against raw aiokafka.

Both modes run on one embedded broker, in this process and event loop, with the same payload bytes,
keys, partitions and consumer fetch settings. Two phases, each in ABBA order (raw, pipeline, pipeline,
raw) so that a drift in the shared machine's load hits both modes alike:

- throughput: open loop, the writer sends one event at a time as fast as it can (each send waits for
  its commit / broker ack before the next); throughput = events / (last processed - first written);
- latency: the writer offers every mode the same fixed rate, a quarter of the slowest mode's measured
  throughput (at most 100/s), so the latency is the path's and not a queue's; end-to-end latency =
  processed - written, per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from alembic.migration import MigrationContext
from alembic.operations import Operations
from benchlib import percentile, ratio, summarize
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts import CloudEvent
from servicekit.broker import EmbeddedBroker
from servicekit.db import Database, asyncpg_dsn
from servicekit.events import ConsumerSpec, EventConsumer, OutboxRelay, outbox
from servicekit.events.kafka import ensure_topics, make_producer, with_dead_letters
from servicekit.migrations import create_platform_tables
from servicekit.settings import ServiceSettings

NAME = "event_pipeline"
DESCRIPTION = (
    "Event throughput and end-to-end latency through outbox -> relay -> broker -> consumer with inbox, "
    "as ratios against raw aiokafka produce -> consume of the same payloads on the same broker"
)
TIMEOUT_S = 300.0

EVENT_TYPE = "ecom.bench.happened.v1"
SOURCE = "/bench"
DATABASE_URL_ENV = "BENCH_DATABASE_URL"
MARK = "bench.event_pipeline.mark"

START_TIMEOUT_S = 30.0
SEND_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
SETTLE_S = 0.5

EFFECTS = Table(
    "bench_effects",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
)


@dataclass(frozen=True)
class Parameters:
    throughput_events: int
    latency_events_max: int
    latency_seconds: float
    latency_rate_max_eps: float = 100.0
    latency_load_fraction: float = 0.25
    warmup_events: int = 50
    rounds: int = 2
    partitions: int = 3
    keys: int = 50
    fetch_max_wait_ms: int = 20
    max_poll_records: int = 500
    relay_batch_size: int = 200
    relay_poll_interval_s: float = 0.05
    segment_timeout_s: float = 60.0
    settle_s: float = SETTLE_S


def parameters_for(quick: bool) -> Parameters:
    if quick:
        return Parameters(throughput_events=300, latency_events_max=150, latency_seconds=3.0)
    return Parameters(throughput_events=2000, latency_events_max=1000, latency_seconds=12.0)


@dataclass(frozen=True)
class LatencyLoad:
    """The fixed rate offered to every mode in the latency phase, derived from this run's throughput."""

    slowest_throughput_eps: float
    offered_rate_eps: float
    events_per_mode: int


def latency_load(params: Parameters, segments: list[Segment]) -> LatencyLoad:
    """A fraction of the slowest mode's measured throughput (capped), so no mode queues; enough events
    for `latency_seconds` per mode."""
    by_mode: dict[str, list[Segment]] = defaultdict(list)
    for segment in segments:
        if segment.phase == "throughput":
            by_mode[segment.mode].append(segment)
    slowest = min(sum(s.count for s in segs) / sum(s.span_s for s in segs) for segs in by_mode.values())
    rate = max(1.0, min(params.latency_rate_max_eps, slowest * params.latency_load_fraction))
    count = max(params.rounds * 25, min(params.latency_events_max, round(rate * params.latency_seconds)))
    return LatencyLoad(slowest, rate, count)


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

    def processed(self, segment: str) -> int:
        return len(self._seen[segment])

    @contextlib.contextmanager
    def observing_commits(self) -> Iterator[None]:
        """Record pipeline events at the moment the consumer's transaction (handler writes + inbox row)
        has committed: the handler leaves a mark in the session, this after_commit hook reads it."""

        def after_commit(session: Session) -> None:
            mark = session.info.pop(MARK, None)
            if mark is not None:
                segment, index, written_ns = mark
                self.record(segment, index, written_ns, time.perf_counter_ns())

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
            name=f"bench-{self.name}",
        )
        self._consumer = EventConsumer(
            ConsumerSpec(
                name=f"bench-{self.name}-{self.topic}",
                handlers={EVENT_TYPE: self.handle},
                topics=[self.topic],
            ),
            self._database,
            bootstrap_servers=self.bootstrap,
            dlq_producer=self._producer,
            fetch_max_wait_ms=self.params.fetch_max_wait_ms,
        )
        self.tasks.append(asyncio.create_task(relay.run(self._stop), name=f"{self.name}-relay"))
        self.tasks.append(asyncio.create_task(self._consumer.run(self._stop), name=f"{self.name}-consumer"))
        await asyncio.wait_for(self._consumer.started.wait(), START_TIMEOUT_S)

    async def handle(self, session: AsyncSession, event: CloudEvent) -> None:
        """A minimal realistic handler: one row written, in the same transaction as the inbox row."""
        started_ns = time.perf_counter_ns()
        await session.execute(
            insert(EFFECTS).values(event_id=event.id, key=event.subject, seq=event.sequence or 0)
        )
        segment, index = event.data["segment"], event.data["index"]
        self.recorder.handler_started_ns[segment].setdefault(index, started_ns)
        session.info[MARK] = (segment, index, event.data["t0"])

    async def send(self, segment: str, index: int) -> None:
        assert self._database is not None
        async with self._database.session() as session:
            written_ns = time.perf_counter_ns()
            await outbox.add(
                session, make_event(segment, index, self.params.keys, written_ns), topic=self.topic
            )
        self.recorder.write_committed_ns[segment][index] = time.perf_counter_ns()

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


# --- driving ----------------------------------------------------------------------------------


@dataclass
class Segment:
    mode: str
    phase: str
    round: int
    name: str
    count: int
    offered_rate_eps: float | None
    send_duration_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)

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
) -> Segment:
    # The event carries a short fixed-width segment id, so every mode sends payloads of the same size.
    name = recorder.new_segment_id()
    segment = Segment(mode.name, phase, round_no, name, count, rate)
    complete = recorder.expect(name, count)
    started = time.perf_counter()
    for index in range(count):
        if rate:
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.wait_for(mode.send(name, index), SEND_TIMEOUT_S)
    segment.send_duration_s = time.perf_counter() - started
    deadline = time.monotonic() + timeout
    while not complete.is_set():
        _check_alive(mode)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{mode.label}: {recorder.processed(name)} of {count} events processed within {timeout:.0f}s"
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(complete.wait(), 0.5)
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


async def run_phase(
    modes: list[Mode],
    recorder: Recorder,
    params: Parameters,
    phase: str,
    events_per_mode: int,
    rate: float | None = None,
) -> list[Segment]:
    segments = []
    for round_no, count in enumerate(split(events_per_mode, params.rounds)):
        for mode in abba(modes, round_no):
            await asyncio.sleep(params.settle_s)
            segments.append(
                await run_segment(
                    mode,
                    recorder,
                    phase=phase,
                    round_no=round_no,
                    count=count,
                    rate=rate,
                    timeout=params.segment_timeout_s,
                )
            )
    return segments


def abba(modes: list[Mode], round_no: int) -> list[Mode]:
    return modes if round_no % 2 == 0 else list(reversed(modes))


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def mode_figures(segments: list[Segment]) -> dict[str, Any]:
    throughput = [s for s in segments if s.phase == "throughput"]
    latency = [s for s in segments if s.phase == "latency"]
    tput_events = sum(s.count for s in throughput)
    lat_events = sum(s.count for s in latency)
    result: dict[str, Any] = {
        "throughput_eps": tput_events / sum(s.span_s for s in throughput),
        "write_rate_eps": tput_events / sum(s.send_duration_s for s in throughput),
        "latency_ms": summarize([v for s in latency for v in s.latencies_ms()]),
        "latency_offered_rate_eps": latency[0].offered_rate_eps if latency else None,
        "latency_achieved_write_rate_eps": lat_events / sum(s.send_duration_s for s in latency),
        "open_loop_latency_ms": summarize([v for s in throughput for v in s.latencies_ms()]),
    }
    if all(s.stages_ms for s in latency):
        result["latency_stages_ms"] = {
            stage: summarize([v for s in latency for v in s.stages_ms[stage]])
            for stage in ("write", "deliver", "consume")
        }
    return result


def compare(pipeline: dict[str, Any], raw: dict[str, Any]) -> dict[str, float | None]:
    return {
        "throughput": ratio(pipeline["throughput_eps"], raw["throughput_eps"]),
        "write_rate": ratio(pipeline["write_rate_eps"], raw["write_rate_eps"]),
        "p50_latency": ratio(pipeline["latency_ms"]["p50"], raw["latency_ms"]["p50"]),
        "p99_latency": ratio(pipeline["latency_ms"]["p99"], raw["latency_ms"]["p99"]),
        "open_loop_p50_latency": ratio(
            pipeline["open_loop_latency_ms"]["p50"], raw["open_loop_latency_ms"]["p50"]
        ),
        "open_loop_p99_latency": ratio(
            pipeline["open_loop_latency_ms"]["p99"], raw["open_loop_latency_ms"]["p99"]
        ),
    }


def detail_table(modes: list[Mode], figures: dict[str, Any], load: LatencyLoad) -> dict[str, Any]:
    raw = figures["modes"]["raw"]
    pipelines = [m for m in modes if m.name != "raw"]
    columns = ["figure", "raw aiokafka"]
    for mode in pipelines:
        columns += [mode.label, "ratio"]
    rows: list[list[Any]] = []

    def row(label: str, pick: Any, ratio_key: str) -> None:
        cells: list[Any] = [label, pick(raw)]
        for mode in pipelines:
            cells += [pick(figures["modes"][mode.name]), figures["ratios"][f"{mode.name}/raw"][ratio_key]]
        rows.append(cells)

    row("throughput (events/s)", lambda f: f["throughput_eps"], "throughput")
    row("write rate, open loop (events/s)", lambda f: f["write_rate_eps"], "write_rate")
    row("latency p50 (ms), fixed rate", lambda f: f["latency_ms"]["p50"], "p50_latency")
    row("latency p99 (ms), fixed rate", lambda f: f["latency_ms"]["p99"], "p99_latency")
    row("latency p50 (ms), open loop*", lambda f: f["open_loop_latency_ms"]["p50"], "open_loop_p50_latency")
    row("latency p99 (ms), open loop*", lambda f: f["open_loop_latency_ms"]["p99"], "open_loop_p99_latency")
    caption = (
        f"ratio = pipeline / raw. Fixed rate: {load.offered_rate_eps:.1f} events/s offered to every mode. "
        "*Open-loop latencies include queueing behind the backlog."
    )
    return {"columns": columns, "rows": rows, "caption": caption}


async def measure(
    modes: list[Mode], recorder: Recorder, params: Parameters
) -> tuple[list[Segment], LatencyLoad]:
    """Start every mode, warm each up, then the throughput phase and the latency phase; stop them all."""
    started: list[Mode] = []
    try:
        for mode in modes:
            await mode.start()
            started.append(mode)
        for mode in modes:
            await run_segment(
                mode,
                recorder,
                phase="warmup",
                round_no=0,
                count=params.warmup_events,
                rate=None,
                timeout=params.segment_timeout_s,
            )
            await wait_assigned(mode, params.partitions)
        segments = await run_phase(modes, recorder, params, "throughput", params.throughput_events)
        load = latency_load(params, segments)
        segments += await run_phase(
            modes, recorder, params, "latency", load.events_per_mode, load.offered_rate_eps
        )
        return segments, load
    finally:
        for mode in reversed(started):
            await mode.stop()


async def run(quick: bool) -> dict[str, Any]:
    params = parameters_for(quick)
    recorder = Recorder()
    pg_base = os.environ.get(DATABASE_URL_ENV)
    with (
        tempfile.TemporaryDirectory(prefix="bench-event-pipeline-") as tmp,
        (Path(tmp) / "broker.log").open("wb") as log,
        EmbeddedBroker(log=log) as broker,
        recorder.observing_commits(),
    ):
        bootstrap = broker.bootstrap_servers
        settings = ServiceSettings(service_name="bench", kafka_bootstrap_servers=bootstrap)
        sqlite_url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        modes: list[Mode] = [
            RawMode(bootstrap, settings, params, recorder),
            PipelineMode(
                "pipeline_sqlite", "pipeline (SQLite)", sqlite_url, bootstrap, settings, params, recorder
            ),
        ]
        if pg_base:
            modes.append(PipelineMode.postgresql(pg_base, bootstrap, settings, params, recorder))
        segments, load = await measure(modes, recorder, params)

    figures: dict[str, Any] = {"modes": {}, "ratios": {}}
    for mode in modes:
        figures["modes"][mode.name] = mode_figures([s for s in segments if s.mode == mode.name])
    for mode in modes[1:]:
        figures["ratios"][f"{mode.name}/raw"] = compare(figures["modes"][mode.name], figures["modes"]["raw"])
    figures["latency_load"] = asdict(load)
    figures["duplicates_seen"] = sum(recorder.duplicates.values())
    figures["segments"] = [segment_figures(s) for s in segments]

    sqlite_ratios = figures["ratios"]["pipeline_sqlite/raw"]
    headline: dict[str, Any] = {
        "throughput ratio pipeline/raw (SQLite)": sqlite_ratios["throughput"],
        "p99 latency ratio pipeline/raw (SQLite)": sqlite_ratios["p99_latency"],
        "p50 latency ratio pipeline/raw (SQLite)": sqlite_ratios["p50_latency"],
    }
    if "pipeline_postgresql/raw" in figures["ratios"]:
        pg_ratios = figures["ratios"]["pipeline_postgresql/raw"]
        headline["throughput ratio pipeline/raw (PostgreSQL)"] = pg_ratios["throughput"]
        headline["p99 latency ratio pipeline/raw (PostgreSQL)"] = pg_ratios["p99_latency"]

    return {
        "parameters": asdict(params)
        | {
            "modes": [m.name for m in modes],
            "postgresql": pg_base is not None,
            "producer": "servicekit.events.kafka.make_producer(ServiceSettings()) for relay, DLQ and raw",
            "kafka_enable_idempotence": settings.kafka_enable_idempotence,
        },
        "headline": headline,
        "figures": figures,
        "notes": notes_for(params, load, figures, with_postgres=pg_base is not None),
        "table": detail_table(modes, figures, load),
    }


def segment_figures(segment: Segment) -> dict[str, Any]:
    latencies = segment.latencies_ms()
    return {
        "mode": segment.mode,
        "phase": segment.phase,
        "round": segment.round,
        "events": segment.count,
        "offered_rate_eps": segment.offered_rate_eps,
        "send_duration_s": segment.send_duration_s,
        "first_written_to_last_processed_s": segment.span_s,
        "throughput_eps": segment.count / segment.span_s,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p99_ms": percentile(latencies, 99),
    }


def notes_for(
    params: Parameters, load: LatencyLoad, figures: dict[str, Any], *, with_postgres: bool
) -> list[str]:
    notes = [
        "Writer, relay, consumers and the raw baseline run in one process and one event loop; the broker is "
        "one embedded Tansu (in memory) child process shared by all modes; every mode's relay/consumer runs "
        "(idle when not measured) during every segment, so background polling is the same for all.",
        "Ratios are pipeline / raw: throughput ratio < 1 and latency ratio > 1 mean the pipeline costs more.",
        "Pipeline latency: from just before outbox.add in the writer's transaction (t0 in the event data) "
        "to just after the consumer's transaction (handler's one-row insert + inbox row) committed, observed "
        "with a SQLAlchemy after_commit hook; the offset commit comes after that and is not included.",
        "Raw latency: from just before building the event and producer.send_and_wait to the record's "
        "receipt and JSON parse in a group consumer (manual commit after each partition's batch, as "
        "EventConsumer does); same payload bytes, key and headers, same fetch_max_wait_ms and "
        "max_poll_records.",
        "Pacing: throughput phase is open loop (the writer sends one event at a time, each waiting for its "
        "commit / broker ack, as fast as it can); throughput = events / (first written -> last processed). "
        f"Latency phase offers the same fixed rate to every mode: {params.latency_load_fraction:g} x the "
        f"slowest mode's throughput measured just before, at most {params.latency_rate_max_eps:g}/s "
        f"(this run: {load.offered_rate_eps:.1f}/s, {load.events_per_mode} events per mode; "
        "figures.latency_load), so the latency is the path's and not a queue's; "
        "figures.modes.*.latency_achieved_write_rate_eps shows whether the writer held the rate. "
        "Open-loop latencies are reported too but include queueing behind the backlog.",
        f"Order: each phase is split into {params.rounds} rounds run in ABBA order across modes "
        "to cancel drift in the (shared) machine's load; figures pool the rounds, per-round figures are in "
        "figures.segments.",
        f"Warm-up: {params.warmup_events} events per mode, processed before measuring, and each consumer "
        f"holds all {params.partitions} partitions (group assignment) before measuring.",
        "Percentiles use linear interpolation between closest ranks.",
        "figures.modes.pipeline_*.latency_stages_ms splits the fixed-rate pipeline latency (diagnostic): "
        "write = t0 -> the writer's commit returned; deliver = that commit -> the handler began (relay "
        "wake-up, claim, publish, broker, consumer fetch, parse, inbox lookup); consume = handler began -> "
        "the consumer's transaction committed.",
    ]
    if not with_postgres:
        notes.append(f"PostgreSQL not measured: set {DATABASE_URL_ENV} to include it.")
    for name, mode in figures["modes"].items():
        if name == "raw":
            continue
        if mode["throughput_eps"] < load.offered_rate_eps * 1.2:
            notes.append(
                f"WARNING: {name} throughput ({mode['throughput_eps']:.0f}/s) is close to or below the "
                "latency phase's offered rate: its fixed-rate latencies include queueing."
            )
        achieved = mode["latency_achieved_write_rate_eps"]
        if achieved < load.offered_rate_eps * 0.95:
            notes.append(
                f"WARNING: {name}'s writer held only {achieved:.0f} of the offered "
                f"{load.offered_rate_eps:.1f} events/s in the latency phase "
                "(writes took longer than the interval)."
            )
    if figures["duplicates_seen"]:
        notes.append(f"{figures['duplicates_seen']} duplicate deliveries were seen and ignored.")
    return notes
