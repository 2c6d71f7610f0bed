"""Event pipeline: outbox -> relay -> broker -> consumer with inbox, against raw aiokafka.

Every mode runs on one embedded broker, in this process and event loop, with the same payload bytes,
keys, partitions and consumer fetch settings. Three phases:

- throughput: N concurrent writers (N = 1, 8, 32) write as fast as they can, each write waiting for its
  commit / broker ack; throughput = events / (first written -> last handled). Split into rounds run in
  ABBA order across modes so that a drift in the shared machine's load hits every mode alike;
- fixed rates (100, 200, 500, 1000 events/s), 32 writers sharing the rate: end-to-end latency per event
  (handled - written) and the backlog (written, not yet handled) sampled over time; a mode that cannot
  hold a rate is marked saturated there and skips the higher ones;
- sustained (PostgreSQL pipeline only): 1000 events/s for 60 s, backlog over time, and whether it grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _event_pipeline_modes import (
    DATABASE_URL_ENV,
    SEND_TIMEOUT_S,
    Mode,
    Parameters,
    PipelineMode,
    RawMode,
    Recorder,
    Segment,
    SessionWriterView,
    run_segment,
    wait_assigned,
)
from benchlib import percentile, ratio, summarize

from servicekit.broker import EmbeddedBroker
from servicekit.settings import ServiceSettings

NAME = "event_pipeline"
DESCRIPTION = (
    "Event throughput with 1/8/32 concurrent writers, end-to-end latency and backlog at fixed rates, "
    "through outbox -> relay -> broker -> consumer with inbox, as ratios against raw aiokafka "
    "produce -> consume of the same payloads on the same broker"
)
TIMEOUT_S = 1200.0

SATURATION_WRITE_FRACTION = 0.9  # a writer below this share of the offered rate could not hold it
SATURATION_BACKLOG_S = 1.0  # a backlog above this many seconds of the rate at the end of writing


def parameters_for(quick: bool) -> Parameters:
    if quick:
        return Parameters(
            throughput_events=300,
            writers=(1, 8),
            rates_eps=(100.0, 200.0),
            rate_seconds=3.0,
            sustained_rate_eps=1000.0,
            sustained_seconds=5.0,
        )
    return Parameters(
        # 4 rounds of 750 events per mode and N: a round of a fast mode lasts ~0.15 s, so with 2 rounds
        # one hiccup of the shared machine (a collection, a stalled fetch) moved a whole figure by half.
        throughput_events=3000,
        rounds=4,
        writers=(1, 8, 32),
        rates_eps=(100.0, 200.0, 500.0, 1000.0),
        rate_seconds=10.0,
        sustained_rate_eps=1000.0,
        sustained_seconds=60.0,
    )


def abba(modes: list[Mode], round_no: int) -> list[Mode]:
    return modes if round_no % 2 == 0 else list(reversed(modes))


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def fixed_rate(
    mode: Mode, recorder: Recorder, params: Parameters, *, phase: str, rate: float, seconds: float
) -> Segment:
    return await run_segment(
        mode,
        recorder,
        phase=phase,
        round_no=0,
        count=round(rate * seconds),
        rate=rate,
        timeout=params.drain_timeout_s,
        writers=params.rate_writers,
        write_for_s=seconds * 1.5,
        lag_interval_s=params.lag_interval_s,
        must_complete=False,
    )


async def transaction_ceiling(mode: PipelineMode | SessionWriterView, params: Parameters) -> Segment:
    """How many state-change transactions alone (no event, nothing to relay or consume) N writers commit
    per second: the ceiling of a pipeline that writes one transaction per event on this database, to read
    its throughput ratio against. N = the middle writer count of the throughput phase (8)."""
    writers = params.writers[len(params.writers) // 2]
    count = params.throughput_events
    segment = Segment(mode.name, "transaction_ceiling", 0, "ceiling", count, None, writers=writers)
    indexes = iter(range(count))

    async def writer() -> None:
        for index in indexes:
            await asyncio.wait_for(mode.write_state_only(index), SEND_TIMEOUT_S)
            segment.written += 1

    await asyncio.sleep(params.settle_s)
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(writer() for _ in range(writers)))
    segment.send_duration_s = time.perf_counter() - started
    segment.cpu_s = time.process_time() - cpu_started
    return segment


async def measure(modes: list[Mode], recorder: Recorder, params: Parameters) -> list[Segment]:
    """Start every mode, warm each up, run the three phases; stop them all."""
    started: list[Mode] = []
    segments: list[Segment] = []
    try:
        for mode in modes:
            await mode.start()
            started.append(mode)
        for mode in modes:
            # With as many concurrent writers as the throughput phase's largest N, so each database pool
            # holds the connections the measured rounds use (a first round would otherwise pay for
            # opening them: PostgreSQL's first N = 8 round ran ~30% slower than its second).
            await run_segment(
                mode,
                recorder,
                phase="warmup",
                round_no=0,
                count=params.warmup_events,
                rate=None,
                timeout=params.segment_timeout_s,
                writers=max(params.writers),
            )
            await wait_assigned(mode, params.partitions)
        for writers in params.writers:
            for round_no, count in enumerate(split(params.throughput_events, params.rounds)):
                for mode in abba(modes, round_no):
                    await asyncio.sleep(params.settle_s)
                    segments.append(
                        await run_segment(
                            mode,
                            recorder,
                            phase="throughput",
                            round_no=round_no,
                            count=count,
                            rate=None,
                            timeout=params.segment_timeout_s,
                            writers=writers,
                        )
                    )
        for mode in modes:
            if isinstance(mode, PipelineMode | SessionWriterView):
                segments.append(await transaction_ceiling(mode, params))
        saturated: set[str] = set()
        for rate in params.rates_eps:
            for mode in modes:
                if mode.name in saturated or isinstance(mode, SessionWriterView):
                    continue
                await asyncio.sleep(params.settle_s)
                segment = await fixed_rate(
                    mode, recorder, params, phase="rate", rate=rate, seconds=params.rate_seconds
                )
                segments.append(segment)
                if rate_figures(segment)["saturated"]:
                    saturated.add(mode.name)
        for mode in modes:
            if mode.name == "pipeline_postgresql":
                await asyncio.sleep(params.settle_s)
                segments.append(
                    await fixed_rate(
                        mode,
                        recorder,
                        params,
                        phase="sustained",
                        rate=params.sustained_rate_eps,
                        seconds=params.sustained_seconds,
                    )
                )
        return segments
    finally:
        for mode in reversed(started):
            await mode.stop()


# --- figures ------------------------------------------------------------------------------------


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def rate_figures(segment: Segment) -> dict[str, Any]:
    """A fixed-rate run: achieved rates, latency, backlog over time, and whether the mode saturated."""
    assert segment.offered_rate_eps is not None
    rate = segment.offered_rate_eps
    achieved = segment.written / segment.send_duration_s if segment.send_duration_s else 0.0
    backlog = [(t, written - handled) for t, written, handled in segment.lag]
    writing = [(t, b) for t, b in backlog if t <= segment.send_duration_s]
    backlog_at_end = writing[-1][1] if writing else 0
    second_half = [(t, b) for t, b in writing if t >= segment.send_duration_s / 2]
    growth = slope(second_half)
    latencies = segment.latencies_ms()
    saturated = (
        achieved < rate * SATURATION_WRITE_FRACTION
        or not segment.complete
        or backlog_at_end > rate * SATURATION_BACKLOG_S
    )
    return {
        "offered_rate_eps": rate,
        "events_written": segment.written,
        "events_handled": len(segment.samples),
        "achieved_write_rate_eps": achieved,
        "handled_rate_eps": len(segment.samples) / segment.span_s if segment.samples else 0.0,
        "latency_ms": summarize(latencies) if latencies else None,
        "backlog_max": max((b for _, b in writing), default=0),
        "backlog_at_end_of_writing": backlog_at_end,
        "backlog_growth_second_half_eps": growth,
        "drained": segment.complete,
        "saturated": saturated,
        "backlog_over_time": [[round(t, 2), b] for t, b in backlog],
    }


def throughput_figures(segments: list[Segment]) -> dict[str, Any]:
    events = sum(s.count for s in segments)
    latencies = [v for s in segments for v in s.latencies_ms()]
    return {
        "throughput_eps": events / sum(s.span_s for s in segments),
        "write_rate_eps": events / sum(s.send_duration_s for s in segments),
        "open_loop_latency_ms": {
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
        },
        "rounds_eps": [s.count / s.span_s for s in segments],
        # The whole process (writers, relay, consumer, client libraries) per event: what a core buys.
        "cpu_ms_per_event": 1000 * sum(s.cpu_s for s in segments) / events,
    }


def build_figures(modes: list[Mode], segments: list[Segment], params: Parameters) -> dict[str, Any]:
    figures: dict[str, Any] = {"throughput": {}, "throughput_ratio": {}, "rates": {}, "saturated_at": {}}
    for mode in modes:
        by_writers = {}
        for writers in params.writers:
            mine = [
                s
                for s in segments
                if s.mode == mode.name and s.phase == "throughput" and s.writers == writers
            ]
            by_writers[str(writers)] = throughput_figures(mine)
        figures["throughput"][mode.name] = by_writers
        rates = {}
        for segment in segments:
            if segment.mode == mode.name and segment.phase == "rate":
                rates[f"{segment.offered_rate_eps:g}"] = rate_figures(segment)
        figures["rates"][mode.name] = rates
        figures["saturated_at"][mode.name] = next(
            (float(r) for r, f in rates.items() if f["saturated"]), None
        )
        stages = [s.stages_ms for s in segments if s.mode == mode.name and s.phase == "rate" and s.stages_ms]
        if stages:
            figures.setdefault("latency_stages_ms", {})[mode.name] = {
                stage: summarize([v for st in stages for v in st[stage]])
                for stage in ("write", "deliver", "consume")
            }
    for segment in segments:
        if segment.phase == "transaction_ceiling":
            figures.setdefault("transaction_ceiling", {})[segment.mode] = {
                "writers": segment.writers,
                "transactions": segment.written,
                "transactions_per_s": segment.written / segment.send_duration_s,
                "cpu_ms_per_transaction": 1000 * segment.cpu_s / segment.written,
            }
    raw = figures["throughput"]["raw"]
    for mode in modes[1:]:
        figures["throughput_ratio"][f"{mode.name}/raw"] = {
            n: ratio(f["throughput_eps"], raw[n]["throughput_eps"])
            for n, f in figures["throughput"][mode.name].items()
        }
    sustained = [s for s in segments if s.phase == "sustained"]
    if sustained:
        result = rate_figures(sustained[0])
        growth = result["backlog_growth_second_half_eps"]
        result["lag_bounded"] = bool(
            result["drained"]
            and result["achieved_write_rate_eps"] >= result["offered_rate_eps"] * SATURATION_WRITE_FRACTION
            and growth is not None
            and growth < 0.02 * result["offered_rate_eps"]
        )
        figures["sustained"] = {sustained[0].mode: result}
    return figures


def headline_for(figures: dict[str, Any], params: Parameters) -> dict[str, Any]:
    headline: dict[str, Any] = {}
    labels = {
        "pipeline_sqlite": "SQLite",
        "pipeline_postgresql": "PostgreSQL",
        "pipeline_sqlite_session": "SQLite, session writer",
        "pipeline_postgresql_session": "PostgreSQL, session writer",
    }
    for key, ratios in figures["throughput_ratio"].items():
        label = labels[key.split("/")[0]]
        for writers in ("1", "8", "32"):
            if writers in ratios:
                headline[f"throughput ratio pipeline/raw, N={writers} ({label})"] = ratios[writers]
    for mode, rates in figures["rates"].items():
        label = labels.get(mode, "raw")
        if "200" in rates and rates["200"]["latency_ms"]:
            headline[f"p99 ms at 200 events/s ({label})"] = rates["200"]["latency_ms"]["p99"]
    for mode, ceiling in figures.get("transaction_ceiling", {}).items():
        raw_eps = figures["throughput"]["raw"][str(ceiling["writers"])]["throughput_eps"]
        headline[f"ceiling: state-only transactions/raw, N={ceiling['writers']} ({labels[mode]})"] = ratio(
            ceiling["transactions_per_s"], raw_eps
        )
    for mode, result in figures.get("sustained", {}).items():
        rate = f"{params.sustained_rate_eps:g}/s for {params.sustained_seconds:g}s"
        headline[f"lag bounded at {rate} ({labels[mode]})"] = result["lag_bounded"]
    return headline


def table_for(modes: list[Mode], figures: dict[str, Any], params: Parameters) -> dict[str, Any]:
    pipelines = [m for m in modes if m.name != "raw"]
    columns = ["figure", "raw aiokafka"]
    for mode in pipelines:
        columns += [mode.label, "ratio"]
    rows: list[list[Any]] = []
    for writers in params.writers:
        n = str(writers)
        cells: list[Any] = [
            f"throughput, {n} writer(s) (events/s)",
            figures["throughput"]["raw"][n]["throughput_eps"],
        ]
        for mode in pipelines:
            cells += [
                figures["throughput"][mode.name][n]["throughput_eps"],
                figures["throughput_ratio"][f"{mode.name}/raw"][n],
            ]
        rows.append(cells)
    ceilings = figures.get("transaction_ceiling", {})
    if ceilings:
        n = str(next(iter(ceilings.values()))["writers"])
        cells = [
            f"ceiling: state-only transactions, {n} writer(s) (/s)",
            figures["throughput"]["raw"][n]["throughput_eps"],
        ]
        for mode in pipelines:
            ceiling = ceilings.get(mode.name)
            value = ceiling["transactions_per_s"] if ceiling else None
            cells += [
                value,
                ratio(value, figures["throughput"]["raw"][n]["throughput_eps"]) if value else None,
            ]
        rows.append(cells)
    for rate in params.rates_eps:
        key = f"{rate:g}"
        for pct in ("p50", "p99"):
            cells = [f"latency {pct} (ms) at {key}/s"]
            for mode in modes:
                result = figures["rates"][mode.name].get(key)
                value = result["latency_ms"][pct] if result and result["latency_ms"] else None
                if result and result["saturated"]:
                    cells.append("saturated" if value is None else f"{value:.0f} (saturated)")
                else:
                    cells.append(value)
                if mode.name != "raw":
                    cells.append(None)
            rows.append(cells)
    for writers in params.writers:
        n = str(writers)
        raw_cpu = figures["throughput"]["raw"][n]["cpu_ms_per_event"]
        cells = [f"CPU ms per event, {n} writer(s)", raw_cpu]
        for mode in pipelines:
            cpu = figures["throughput"][mode.name][n]["cpu_ms_per_event"]
            cells += [cpu, ratio(cpu, raw_cpu)]
        rows.append(cells)
    caption = "ratio = pipeline / raw. Fixed-rate rows: 32 writers share the offered rate."
    return {"columns": columns, "rows": rows, "caption": caption}


def notes_for(params: Parameters, figures: dict[str, Any], with_postgres: bool) -> list[str]:
    notes = [
        "Writers, relay, consumers and the raw baseline run in one process and one event loop; the broker "
        "is one embedded Tansu (in memory) child process shared by all modes; every mode's relay/consumer "
        "runs (idle when not measured) during every segment.",
        "Pipeline writers stage each event with outbox.add in a lean transaction (Database.transaction(), "
        "Core statements, no ORM session); the *_session modes run the same pipelines with each writer in a "
        "Database.session() (throughput and ceiling phases only).",
        "Pipeline latency: from just before outbox.add in the writer's transaction (t0 in the event) to just "
        "after the consumer's transaction committed (its batch handler writes one row per event in one "
        "multi-row INSERT, with the batch's inbox rows), seen by a SQLAlchemy after_commit hook; raw "
        "latency: from just before send_and_wait to the record's receipt and JSON parse in a group "
        "consumer. Same payload, key, headers, fetch_max_wait_ms and max_poll_records.",
        f"Throughput phase: N concurrent writers for N in {list(params.writers)}, "
        f"{params.throughput_events} events per mode and N, {params.rounds} rounds in ABBA order.",
        f"Fixed rates {list(params.rates_eps)} events/s, {params.rate_seconds:g}s each, "
        f"{params.rate_writers} writers sharing the rate. Backlog = events written but not yet handled "
        "(outbox + topic + consumer), "
        f"sampled every {params.lag_interval_s:g}s. A mode is saturated at a rate when its writers held less "
        f"than {SATURATION_WRITE_FRACTION:g} of it, its backlog at the end of writing exceeded "
        f"{SATURATION_BACKLOG_S:g}s of the rate, or it did not drain within {params.drain_timeout_s:g}s; "
        "it then skips the higher rates. Its latencies there include queueing.",
        "Sustained (PostgreSQL pipeline): lag_bounded = drained, writers held the rate, and the backlog's "
        "least-squares growth over the second half of the run is under 2% of the rate per second.",
        "The machine is shared: load average at the start and end of the run is in figures.loadavg; it moves "
        "the absolute figures of every mode, the ratios less.",
    ]
    if not with_postgres:
        notes.append(f"PostgreSQL not measured: set {DATABASE_URL_ENV} to include it.")
    for mode, rate in figures["saturated_at"].items():
        if rate is not None:
            notes.append(f"{mode} saturated at {rate:g} events/s.")
    return notes


async def run(quick: bool) -> dict[str, Any]:
    params = parameters_for(quick)
    recorder = Recorder()
    pg_base = os.environ.get(DATABASE_URL_ENV)
    load_start = os.getloadavg()
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
        # The same pipelines with their writers in ORM sessions (throughput and ceiling phases only).
        modes += [SessionWriterView(m) for m in modes if isinstance(m, PipelineMode)]
        started = time.perf_counter()
        segments = await measure(modes, recorder, params)
        measured_s = time.perf_counter() - started

    figures = build_figures(modes, segments, params)
    figures["loadavg"] = {"start": list(load_start), "end": list(os.getloadavg())}
    figures["measured_s"] = measured_s
    figures["duplicates_seen"] = sum(recorder.duplicates.values())
    with contextlib.suppress(Exception):
        figures["loadavg"]["nproc"] = os.cpu_count()
    return {
        "parameters": asdict(params)
        | {
            "modes": [m.name for m in modes],
            "postgresql": pg_base is not None,
            "producer": "servicekit.events.kafka.make_producer(ServiceSettings()) for relay, DLQ and raw",
            "kafka_enable_idempotence": settings.kafka_enable_idempotence,
        },
        "headline": headline_for(figures, params),
        "figures": figures,
        "notes": notes_for(params, figures, with_postgres=pg_base is not None),
        "table": table_for(modes, figures, params),
    }
