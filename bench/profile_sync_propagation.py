"""Where a price change's time goes in sync-service: `python bench/profile_sync_propagation.py [--quick]`.

Runs the `sync_propagation` scenario and, during its measured phases only (the propagation at a sustained
rate, the full resync), (1) times the steps of the
pipeline by wrapping the functions that do them — the consumer's batch transaction (inbox + handlers +
commit), the listings' recomputation, a push (read the listings, POST, acknowledge), its HTTP attempt and
its acknowledgement — with calls, total and mean, and the batch sizes; (2) splits each acknowledged
listing's latency into event -> consumer commit (broker + consumer), commit -> push start (queue) and push
start -> acknowledged (read, POST, outcome committed); and (3) prints a pyinstrument profile of the
event loop's thread (`--html` writes it as HTML). A diagnostic, not a benchmark: the wrappers cost a
little.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR / "scenarios"))

import sync_propagation as scenario  # noqa: E402
from benchlib import summarize  # noqa: E402
from pyinstrument import Profiler  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from servicekit.events import EventConsumer  # noqa: E402
from sync_service.listings import service as listings  # noqa: E402
from sync_service.push import deliveries  # noqa: E402
from sync_service.push.outcomes import Outcome, OutcomeWriter  # noqa: E402
from sync_service.push.pipeline import ChannelWorker, PushPipeline  # noqa: E402

STAGES: dict[str, list[float]] = defaultdict(list)
SIZES: dict[str, list[int]] = defaultdict(list)
SPLIT: dict[str, list[float]] = defaultdict(list)
ENQUEUED: dict[tuple[str, str], float] = {}
COMMITTED: dict[tuple[str, str], float] = {}
ACTIVE = {"on": False}


def timed(owner: Any, attribute: str, stage: str, size: Callable[..., int] | None = None) -> None:
    """Wrap the coroutine function `owner.attribute` to add its wall time to `stage`."""
    original: Callable[..., Any] = getattr(owner, attribute)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            if ACTIVE["on"]:
                STAGES[stage].append(time.perf_counter() - started)
                if size is not None:
                    SIZES[stage].append(size(*args, **kwargs))

    setattr(owner, attribute, wrapper)


def instrument() -> None:
    timed(EventConsumer, "_apply_batch", "consumer: batch (inbox+handlers+commit)", lambda _s, h: len(h))
    timed(listings, "recompute", "consumer: recompute listings", lambda _s, **kw: len(kw["skus"]))
    timed(ChannelWorker, "deliver", "push: read + POST (+ retries)", lambda _w, batch: len(batch))
    timed(deliveries, "pending_listings", "push: read pending listings")
    timed(ChannelWorker, "_attempt", "push: HTTP attempt (sign+POST+answer)")
    timed(OutcomeWriter, "record", "push: outcome handed in -> committed")
    timed(OutcomeWriter, "_write", "push outcomes: one round (UPDATEs+deliveries)", lambda _w, r: len(r))
    timed(AsyncSession, "commit", "session.commit (all sessions)")

    enqueue = PushPipeline.enqueue

    def enqueue_timed(self: PushPipeline, pairs: Any, **kwargs: Any) -> None:
        pairs = list(pairs)
        now = time.time()
        for pair in pairs:
            ENQUEUED.setdefault(pair, now)
        enqueue(self, pairs, **kwargs)

    PushPipeline.enqueue = enqueue_timed  # type: ignore[method-assign]

    enqueue_prepared = PushPipeline.enqueue_prepared

    def enqueue_prepared_timed(self: PushPipeline, channel_id: str, rows: Any, channel: Any = None) -> None:
        now = time.time()
        for row in rows:
            ENQUEUED.setdefault((channel_id, row.sent.sku), now)
        enqueue_prepared(self, channel_id, rows, channel)

    PushPipeline.enqueue_prepared = enqueue_prepared_timed  # type: ignore[method-assign]

    deliver = ChannelWorker.deliver

    async def deliver_split(self: ChannelWorker, batch: list[str]) -> Any:
        started = time.time()
        for sku in batch:
            queued = ENQUEUED.pop((self.channel_id, sku), None)
            if queued is not None and ACTIVE["on"]:
                SPLIT["commit -> push start (queue)"].append((started - queued) * 1000)
        return await deliver(self, batch)

    ChannelWorker.deliver = deliver_split  # type: ignore[method-assign]

    record = OutcomeWriter.record

    async def record_split(self: OutcomeWriter, outcome: Outcome) -> None:
        await record(self, outcome)
        done = time.time()
        if ACTIVE["on"]:
            for item, *_ in outcome.answered:
                SPLIT["event -> acknowledged (commit)"].append((done - item.desired_at.timestamp()) * 1000)

    OutcomeWriter.record = record_split  # type: ignore[method-assign]

    recompute = listings.recompute

    async def recompute_split(session: AsyncSession, **kwargs: Any) -> Any:
        changed = await recompute(session, **kwargs)
        at = kwargs["at"].timestamp()
        if ACTIVE["on"] and changed:

            def committed(_: Any) -> None:
                SPLIT["event (latest of batch) -> consumer commit"].append((time.time() - at) * 1000)

            from sqlalchemy import event as sa_event

            sa_event.listen(session.sync_session, "after_commit", committed, once=True)
        return changed

    listings.recompute = recompute_split


def main(args: argparse.Namespace) -> None:
    instrument()
    profilers: dict[str, Profiler] = {}
    marks: dict[str, tuple[float, float]] = {}

    def observe(phase: str, started: bool) -> None:
        ACTIVE["on"] = started and (args.phase in ("all", phase))
        if started:
            marks[phase] = (time.perf_counter(), time.process_time())
            if not args.no_profile:
                profilers[phase] = Profiler(async_mode="disabled")
                profilers[phase].start()
        else:
            wall0, cpu0 = marks[phase]
            marks[phase] = (time.perf_counter() - wall0, time.process_time() - cpu0)
            if phase in profilers:
                profilers[phase].stop()

    scenario.OBSERVERS.append(observe)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as bench/run.py and uvicorn
        result = runner.run(scenario.run(args.quick))
    print(f"load average at the end: {os.getloadavg()}")
    for phase, (wall, cpu) in marks.items():
        print(f"{phase}: wall {wall:.1f}s, this process's CPU {cpu:.1f}s")
    print("headline:", result["headline"])
    print("resync:", result["figures"]["resync"])
    print(f"{'stage':50} {'calls':>7} {'total s':>8} {'mean ms':>8} {'mean size':>9}")
    for stage, values in sorted(STAGES.items(), key=lambda kv: -sum(kv[1])):
        total = sum(values)
        sizes = SIZES.get(stage)
        mean_size = f"{sum(sizes) / len(sizes):9.1f}" if sizes else ""
        print(f"{stage:50} {len(values):7d} {total:8.2f} {1000 * total / len(values):8.2f} {mean_size}")
    print("latency split (ms):")
    for part, values in SPLIT.items():
        figures = summarize(values)
        print(f"  {part:45} n={figures['count']} p50={figures['p50']:.0f} p99={figures['p99']:.0f}")
    for phase, profiler in profilers.items():
        if args.html:
            Path(f"{args.html}.{phase}.html").write_text(profiler.output_html())
        else:
            print(f"=== profile of phase {phase}")
            print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="stage timings only")
    parser.add_argument(
        "--phase", choices=("all", "propagation", "resync"), default="all", help="stage timings of this phase"
    )
    parser.add_argument(
        "--html", help="write each phase's pyinstrument profile as HTML to <this>.<phase>.html"
    )
    main(parser.parse_args())
