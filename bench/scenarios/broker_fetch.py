"""Broker fetch: how fast a consumer group reads a backlog from the embedded broker, in memory and durable.

The durable dev broker (`ecom dev`, `--broker-storage disk`) is Tansu with its `s3://` engine over a
local S3 server (localbucket) under VAR_DIR/broker. Tansu serves a fetch of a partition that has unread
records by listing that partition's record objects, then reading them; it stops the listing when the
fetch's max wait (`fetch_max_wait_ms`) is spent and then answers *nothing* for that partition. A
localbucket listing walks the whole bucket (every object of every topic) on each request, so it takes
tens to hundreds of milliseconds, more as the bucket grows and the machine is loaded.

Modes, each on a fresh broker, same backlog, same consumer:
- memory/<wait>: the in-memory broker with the services' default wait (the baseline);
- durable/<wait>: the durable broker with that same wait (what `ecom dev` ran before);
- durable/<DURABLE_FETCH_MAX_WAIT_MS>: the durable broker with the wait `ecom dev` now gives the services.

The backlog: EVENTS events (about 600 bytes, keyed) spread over TOPICS topics of 3 partitions (the
analytics `facts` consumer reads 15 partitions), produced before the consumer starts with a small linger,
so the broker holds many small batches, as the relays make. The consumer is aiokafka with the settings of
servicekit's EventConsumer (manual commit after each batch, max_poll_records 500, session timeout 3 s as
`ecom dev` sets), without a database, so what is measured is the broker's side. A mode that has not
read the whole backlog within CAP seconds stops there and reports what it read.

The cost of a longer wait: once the backlog is read, the consumer idles and LATENCY_PROBES single events
are produced one at a time; the time from the send's acknowledgement to the consumer's getmany returning
it is each mode's idle latency.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from benchlib import ratio, summarize

from servicekit.broker import DURABLE_FETCH_MAX_WAIT_MS, MEMORY_FETCH_MAX_WAIT_MS, EmbeddedBroker
from servicekit.events.kafka import ensure_topics

NAME = "broker_fetch"
DESCRIPTION = (
    "Events/s a consumer group reads from the embedded broker: in memory vs durable (s3 over localbucket), "
    "with the fetch max wait the services used before and the one `ecom dev` now sets"
)
TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Parameters:
    events: int
    topics: int
    cap_s: float
    latency_probes: int
    value_bytes: int = 600
    partitions: int = 3


def parameters_for(quick: bool) -> Parameters:
    if quick:
        return Parameters(events=300, topics=5, cap_s=30.0, latency_probes=5)
    return Parameters(events=1500, topics=5, cap_s=90.0, latency_probes=20)


async def _produce(bootstrap: str, topics: list[str], params: Parameters) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topics[i % len(topics)], b"x" * params.value_bytes, key=str(i).encode())
            for i in range(params.events)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topics: list[str], params: Parameters, wait_ms: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id="bench-broker-fetch",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=wait_ms,
        session_timeout_ms=3000,
        heartbeat_interval_ms=750,
        max_poll_records=500,
    )
    began = time.perf_counter()
    await consumer.start()
    read = 0
    first_s: float | None = None
    fetches_with_records = 0
    try:
        while read < params.events and time.perf_counter() - began < params.cap_s:
            batches = await consumer.getmany(timeout_ms=200)
            count = sum(len(records) for records in batches.values())
            if count:
                fetches_with_records += 1
                if first_s is None:
                    first_s = time.perf_counter() - began
                read += count
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
        span = time.perf_counter() - began
        latencies_ms = (
            await _idle_latencies(consumer, bootstrap, topics, params) if read >= params.events else []
        )
    finally:
        await consumer.stop()
    return {
        "idle_latency_ms": summarize(latencies_ms) if latencies_ms else None,
        "read": read,
        "complete": read >= params.events,
        "span_s": span,
        "first_record_s": first_s,
        "events_per_s": read / span,
        "events_per_s_after_first": read / (span - first_s)
        if first_s is not None and span > first_s
        else None,
        "polls_with_records": fetches_with_records,
    }


async def _idle_latencies(
    consumer: AIOKafkaConsumer, bootstrap: str, topics: list[str], params: Parameters
) -> list[float]:
    """Produce single events to the idle consumer, one at a time; the delay until getmany returns each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    latencies: list[float] = []
    try:
        for probe in range(params.latency_probes):
            await asyncio.sleep(0.3 + (probe % 4) * 0.17)  # land at different points of a waiting fetch
            await producer.send_and_wait(topics[probe % len(topics)], b"probe", key=str(probe).encode())
            sent = time.perf_counter()
            deadline = sent + 10.0
            while time.perf_counter() < deadline:
                batches = await consumer.getmany(timeout_ms=50)
                if batches:
                    latencies.append((time.perf_counter() - sent) * 1000)
                    break
    finally:
        await producer.stop()
    return latencies


async def _mode(tmp: Path, name: str, *, durable: bool, wait_ms: int, params: Parameters) -> dict[str, Any]:
    data_dir = tmp / name.replace("/", "-") if durable else None
    with (tmp / f"{name.replace('/', '-')}.log").open("ab") as log:
        broker = EmbeddedBroker(data_dir=data_dir, log=log).start()
        try:
            topics = [f"bench.fetch.{i}" for i in range(params.topics)]
            await ensure_topics(broker.bootstrap_servers, topics, partitions=params.partitions)
            await _produce(broker.bootstrap_servers, topics, params)
            result = await _consume(broker.bootstrap_servers, topics, params, wait_ms)
        finally:
            broker.stop()
    objects = sum(1 for path in data_dir.rglob("*") if path.is_file()) if data_dir is not None else None
    return result | {"durable": durable, "fetch_max_wait_ms": wait_ms, "storage_objects": objects}


async def run(quick: bool) -> dict[str, Any]:
    params = parameters_for(quick)
    modes = {
        f"memory/{MEMORY_FETCH_MAX_WAIT_MS}": (False, MEMORY_FETCH_MAX_WAIT_MS),
        f"durable/{MEMORY_FETCH_MAX_WAIT_MS}": (True, MEMORY_FETCH_MAX_WAIT_MS),
        f"durable/{DURABLE_FETCH_MAX_WAIT_MS}": (True, DURABLE_FETCH_MAX_WAIT_MS),
    }
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-broker-fetch-") as tmp_name:
        for name, (durable, wait_ms) in modes.items():
            figures[name] = await _mode(Path(tmp_name), name, durable=durable, wait_ms=wait_ms, params=params)
    baseline = figures[f"memory/{MEMORY_FETCH_MAX_WAIT_MS}"]["events_per_s"]
    before = figures[f"durable/{MEMORY_FETCH_MAX_WAIT_MS}"]
    after = figures[f"durable/{DURABLE_FETCH_MAX_WAIT_MS}"]
    headline = {
        "memory_events_per_s": baseline,
        "durable_before_events_per_s": before["events_per_s"],
        "durable_before_read": before["read"],
        "durable_after_events_per_s": after["events_per_s"],
        "durable_after_read": after["read"],
        "ratio_durable_after_over_before": ratio(after["events_per_s"], before["events_per_s"]),
        "ratio_durable_after_over_memory": ratio(after["events_per_s"], baseline),
        "memory_idle_latency_p50_ms": (
            figures[f"memory/{MEMORY_FETCH_MAX_WAIT_MS}"]["idle_latency_ms"] or {}
        ).get("p50"),
        "durable_after_idle_latency_p50_ms": (after["idle_latency_ms"] or {}).get("p50"),
        "durable_after_idle_latency_max_ms": (after["idle_latency_ms"] or {}).get("max"),
    }
    return {
        "parameters": asdict(params),
        "headline": headline,
        "figures": figures,
        "notes": [
            "events/s = records read / time from the consumer's start (group join included) to the last "
            "record, or to the cap when the backlog was not all read.",
            "Tansu answers a fetch of a partition with unread records with nothing when listing the "
            "partition's objects in S3 outlasts the fetch's max wait; localbucket walks the whole bucket "
            "for every listing.",
        ],
        "table": {
            "columns": [
                "mode",
                "read",
                "span s",
                "first record s",
                "events/s",
                "idle latency p50 ms",
                "objects in storage",
            ],
            "rows": [
                [
                    name,
                    f["read"],
                    f["span_s"],
                    f["first_record_s"],
                    f["events_per_s"],
                    (f["idle_latency_ms"] or {}).get("p50"),
                    f["storage_objects"],
                ]
                for name, f in figures.items()
            ],
            "caption": f"{params.events} events over {params.topics * params.partitions} partitions",
        },
    }
