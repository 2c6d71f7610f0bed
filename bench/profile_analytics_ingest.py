"""Where a tracked event's time goes in analytics-service's activity consumer, without the broker:
`python bench/profile_analytics_ingest.py [--events N] [--batch 500] [--html out.html] [--postgres URL]`.

The `analytics` scenario's ingestion envelopes (out of order, 10 % redelivered as new envelopes) are
serialised as the broker would hand them over and fed to `EventConsumer._process` in fetched batches of
`--batch` records (round-robin over three partitions, like one `getmany`), against a database migrated by
the service's migrations. Reports CPU µs per event for (1) decoding the envelopes alone and (2) the whole
consumer path, the event loop thread's CPU time in each stage (by wrapping the functions doing it), and a
pyinstrument (`--profile`) or cProfile (`--cprofile SORT`, CPU time of the loop's thread) profile. A
diagnostic, not a benchmark: the wrappers cost a little. The machine is shared: compare runs made back to
back, and the stages with the decode-only figure of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import functools
import gc
import pstats
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR / "scenarios"))

import analytics as scenario  # noqa: E402
from aiokafka.structs import ConsumerRecord, TopicPartition  # noqa: E402
from benchlib import migrated_database  # noqa: E402
from pyinstrument import Profiler  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from analytics_service.config import ALEMBIC_INI, Settings  # noqa: E402
from analytics_service.events import ACTIVITY_CONSUMER, consumers  # noqa: E402
from analytics_service.warehouse import activity, customers, orders, rollups  # noqa: E402
from contracts import CloudEvent  # noqa: E402
from servicekit.db import Database  # noqa: E402
from servicekit.events import EventConsumer  # noqa: E402

STAGES: dict[str, list[float]] = defaultdict(list)


def timed(owner: Any, attribute: str, stage: str) -> None:
    """Wrap the coroutine function `owner.attribute` to add the event loop thread's CPU time while it
    runs to `stage` (the time its statements take in SQLite's thread is not in it)."""
    original: Callable[..., Any] | None = getattr(owner, attribute, None)
    if original is None:
        return

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return await original(*args, **kwargs)
        finally:
            STAGES[stage].append(time.thread_time() - started)

    setattr(owner, attribute, wrapper)


def instrument() -> None:
    timed(EventConsumer, "_apply_batch", "batch: inbox + handlers + commit")
    timed(EventConsumer, "_add_to_inbox", "inbox insert (dedupe)")
    timed(activity, "fold", "fold (whole handler)")
    timed(activity, "_store_raw", "fold: raw events insert")
    timed(activity, "_identities", "fold: identities (links, survivors, consent)")
    timed(activity, "_fold_sessions", "fold: sessions (lookup + fold + write)")
    timed(activity, "_attribute_orders", "fold: order attribution")
    timed(customers, "note_first_seen", "fold: customer first seen upsert")
    timed(rollups, "apply", "fold: rollup upserts")
    timed(orders, "reattribute_sessions", "fold: reattribute moved sessions")
    timed(AsyncSession, "commit", "session.commit")


def records(envelopes: list[CloudEvent], topic: str, batch: int) -> list[dict[TopicPartition, list[Any]]]:
    """The envelopes as fetched batches: keyed to one of three partitions, `batch` records a fetch."""
    partitions: dict[int, list[bytes]] = defaultdict(list)
    for envelope in envelopes:
        partitions[zlib.crc32((envelope.subject or "").encode()) % 3].append(envelope.to_json_bytes())
    offsets = dict.fromkeys(partitions, 0)
    fetches: list[dict[TopicPartition, list[Any]]] = []
    while any(offsets[p] < len(v) for p, v in partitions.items()):
        fetch: dict[TopicPartition, list[Any]] = {}
        room = batch
        for partition, values in sorted(partitions.items()):
            take = min(room, len(values) - offsets[partition], max(1, batch // 3))
            if take <= 0:
                continue
            fetch[TopicPartition(topic, partition)] = [
                ConsumerRecord(
                    topic, partition, offset, 0, 0, None, values[offset], None, 0, len(values[offset]), ()
                )
                for offset in range(offsets[partition], offsets[partition] + take)
            ]
            offsets[partition] += take
            room -= take
        fetches.append(fetch)
    return fetches


async def main(args: argparse.Namespace) -> None:
    if args.no_gc:
        gc.disable()
    envelopes = scenario._ingestion_events(args.events, seed=7)
    topic = "bench.activity.profile"
    fetches = records(envelopes, topic, args.batch)
    total = sum(len(r) for f in fetches[1:] for r in f.values())
    started = time.process_time()
    for fetch in fetches[1:]:
        for rs in fetch.values():
            for record in rs:
                CloudEvent.from_json_bytes(record.value)
    decode_cpu = time.process_time() - started
    with tempfile.TemporaryDirectory(prefix="profile-analytics-") as tmp:
        kind = "postgresql" if args.postgres else "sqlite"
        async with migrated_database(kind, Path(tmp), "ingest", ALEMBIC_INI, args.postgres or "") as url:
            settings = Settings(database_url=url)
            service_spec = next(s for s in consumers(settings) if s.name == ACTIVITY_CONSUMER)
            # the service's spec (handlers, decoding) under a name of its own, fetching `--batch` records
            spec = dataclasses.replace(
                service_spec, name=f"{ACTIVITY_CONSUMER}.profile", topics=[topic], max_batch=args.batch
            )
            database = Database(url, sqlite_cache_kib=getattr(settings, "database_sqlite_cache_kib", None))
            consumer = EventConsumer(spec, database, bootstrap_servers="unused", dlq_producer=None)  # type: ignore[arg-type]
            await consumer._process(fetches[0])  # warm-up (statements compiled), as the scenario's clock
            fetches = fetches[1:]  # starts after the first handled batch
            total = sum(len(r) for f in fetches for r in f.values())
            if not args.no_stages:
                instrument()
            profiler = Profiler(async_mode="enabled") if args.profile else None
            deterministic = cProfile.Profile(time.thread_time) if args.cprofile else None  # CPU, not wall
            if profiler:
                profiler.start()
            if deterministic:
                deterministic.enable()
            wall, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
            for fetch in fetches:
                await consumer._process(fetch)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            loop_cpu = time.thread_time() - loop_cpu
            if profiler:
                profiler.stop()
            if deterministic:
                deterministic.disable()
            async with database.read() as connection:
                stored = await connection.scalar(text("SELECT count(*) FROM activity_events"))
            equal = await scenario._rollups_equal_recomputation(database, settings.reporting_currency)
            await database.dispose()
    print(f"{total} envelopes timed in {len(fetches)} fetches (after a first one), {stored} stored")
    print(f"rollups equal a recomputation: {equal}")
    print(f"decode only: {decode_cpu / total * 1e6:.1f} µs CPU/event")
    print(
        f"consumer path: {total / wall:,.0f} events/s, {cpu / total * 1e6:.1f} µs CPU/event "
        f"({loop_cpu / total * 1e6:.1f} in the event loop's thread, the rest in SQLite's)"
    )
    for stage, seconds in sorted(STAGES.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {stage:50s} {sum(seconds) / total * 1e6:8.1f} µs CPU/event  ({len(seconds)} calls)")
    if deterministic:
        pstats.Stats(deterministic).sort_stats(args.cprofile).print_stats(40)
    if profiler:
        if args.html:
            Path(args.html).write_text(profiler.output_html())  # noqa: ASYNC240 (after the run)
        else:
            print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=2000, help="records per fetch (the service's: 2000)")
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile of the loop thread")
    parser.add_argument("--html", help="write the profile as HTML here")
    parser.add_argument("--cprofile", metavar="SORT", help="cProfile the consumer loop, sorted by SORT")
    parser.add_argument("--no-gc", action="store_true", help="cyclic garbage collector off throughout")
    parser.add_argument("--no-stages", action="store_true", help="no stage wrappers")
    parser.add_argument("--postgres", help="a PostgreSQL server URL instead of SQLite")
    asyncio.run(main(parser.parse_args()))
