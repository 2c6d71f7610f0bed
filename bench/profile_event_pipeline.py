"""Where an event's time goes in the pipeline: `python bench/profile_event_pipeline.py [--writers N]`.

Runs the `event_pipeline` scenario's SQLite (or, with BENCH_DATABASE_URL, PostgreSQL) pipeline on an
embedded broker, pushes a fixed number of events through it with N concurrent writers, and reports
(1) the wall time spent in each stage — outbox insert + commit, relay claim, publish (send to ack),
mark, consumer fetch, inbox lookup, handler, consumer commit, offset commit — as total and per call,
timed by wrapping the functions that do each step; and (2) a pyinstrument profile of the event loop's
thread (`--html` writes it as HTML). A diagnostic, not a benchmark: the wrappers cost a little.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR / "scenarios"))

import event_pipeline as scenario  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from pyinstrument import Profiler  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from servicekit.broker import EmbeddedBroker  # noqa: E402
from servicekit.events import EventConsumer, OutboxRelay, outbox  # noqa: E402
from servicekit.settings import ServiceSettings  # noqa: E402

STAGES: dict[str, list[float]] = defaultdict(list)


def timed(owner: Any, attribute: str, stage: str) -> None:
    """Wrap the coroutine function `owner.attribute` to add its wall time to `stage` (if it exists)."""
    original: Callable[..., Any] | None = getattr(owner, attribute, None)
    if original is None:
        return

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            STAGES[stage].append(time.perf_counter() - started)

    setattr(owner, attribute, wrapper)


def instrument() -> None:
    timed(outbox, "add", "writer: outbox insert (flush)")
    timed(OutboxRelay, "_claim", "relay: claim (SELECT)")
    timed(OutboxRelay, "publish_batch", "relay: whole batch (claim+send+mark+commit)")
    timed(OutboxRelay, "_send_all", "relay: publish (send -> all acks)")
    timed(OutboxRelay, "_mark", "relay: mark published (UPDATE)")
    timed(AIOKafkaProducer, "send", "producer.send (enqueue)")
    timed(AIOKafkaConsumer, "getmany", "consumer: fetch (getmany)")
    timed(EventConsumer, "_apply_once", "consumer: one event (inbox+handler+commit)")
    timed(EventConsumer, "_apply_batch", "consumer: one batch (inbox+handlers+commit)")
    timed(EventConsumer, "commit", "consumer: offset commit")
    timed(AsyncSession, "get", "session.get (inbox lookup)")
    timed(AsyncSession, "commit", "session.commit (all sessions)")


async def main(args: argparse.Namespace) -> None:
    params = scenario.parameters_for(quick=True)
    recorder = scenario.Recorder()
    pg_base = os.environ.get(scenario.DATABASE_URL_ENV)
    with (
        tempfile.TemporaryDirectory(prefix="profile-event-pipeline-") as tmp,
        (Path(tmp) / "broker.log").open("wb") as log,
        EmbeddedBroker(log=log) as broker,
        recorder.observing_commits(),
    ):
        settings = ServiceSettings(service_name="bench", kafka_bootstrap_servers=broker.bootstrap_servers)
        if pg_base:
            mode = scenario.PipelineMode.postgresql(
                pg_base, broker.bootstrap_servers, settings, params, recorder
            )
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            mode = scenario.PipelineMode(
                "pipeline_sqlite",
                "pipeline (SQLite)",
                url,
                broker.bootstrap_servers,
                settings,
                params,
                recorder,
            )
        await mode.start()
        try:
            await scenario.run_segment(
                mode, recorder, phase="warmup", round_no=0, count=50, rate=None, timeout=60
            )
            await scenario.wait_assigned(mode, params.partitions)
            instrument()
            profiler = None if args.no_profile else Profiler(async_mode="disabled")
            if profiler is not None:
                profiler.start()
            started = time.perf_counter()
            cpu_started = time.process_time()
            segment = await scenario.run_segment(
                mode,
                recorder,
                phase="throughput",
                round_no=0,
                count=args.events,
                rate=None,
                timeout=120,
                writers=args.writers,
            )
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            if profiler is not None:
                profiler.stop()
        finally:
            await mode.stop()
    print(
        f"{args.events} events, {args.writers} writer(s): {elapsed:.2f}s, "
        f"{args.events / elapsed:.0f} events/s, CPU {cpu:.2f}s"
    )
    lat = segment.latencies_ms()
    print(f"end to end p50 {sorted(lat)[len(lat) // 2]:.1f} ms")
    print(f"{'stage':55} {'calls':>7} {'total s':>8} {'mean ms':>8} {'per event ms':>13}")
    for stage, values in sorted(STAGES.items(), key=lambda kv: -sum(kv[1])):
        total = sum(values)
        print(
            f"{stage:55} {len(values):7d} {total:8.2f} {1000 * total / len(values):8.2f} "
            f"{1000 * total / args.events:13.3f}"
        )
    if profiler is None:
        return
    if args.html:
        with open(args.html, "w") as html:  # noqa: ASYNC230 (after the measurement)
            html.write(profiler.output_html())
    else:
        print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="stage timings only, no pyinstrument (to run under an outside sampler such as py-spy)",
    )
    parser.add_argument("--html", help="write the pyinstrument profile as HTML to this file")
    asyncio.run(main(parser.parse_args()))
