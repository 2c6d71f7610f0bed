"""Replaying a dead-letter topic: publish its events back to the topic they failed on."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.topics import DLQ_SUFFIX
from servicekit.broker import MEMORY_FETCH_MAX_WAIT_MS

REPLAY_GROUP_PREFIX = "ecom-dlq-replay"
REPLAYED_HEADER = "replayed_from"


class ReplayError(RuntimeError):
    pass


@dataclass
class ReplayReport:
    dlq_topic: str
    replayed: int = 0
    by_target: dict[str, int] = field(default_factory=dict)


async def replay_dead_letters(
    bootstrap_servers: str,
    dlq_topic: str,
    *,
    limit: int | None = None,
    timeout: float = 60.0,
    fetch_max_wait_ms: int = MEMORY_FETCH_MAX_WAIT_MS,
) -> ReplayReport:
    """Publish every not-yet-replayed record of `dlq_topic` to its `original_topic` header (or the
    topic name without `.dlq`), same key and value, then commit, so a second run replays nothing twice.
    Consumers' inboxes make replaying an already handled event harmless."""
    if not dlq_topic.endswith(DLQ_SUFFIX):
        raise ReplayError(f"{dlq_topic!r} is not a dead-letter topic (it must end in {DLQ_SUFFIX})")
    report = ReplayReport(dlq_topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=f"{REPLAY_GROUP_PREFIX}.{dlq_topic}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,  # the durable dev broker needs more: see servicekit.broker
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await consumer.start()
    await producer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(dlq_topic)
        if not partitions:
            raise ReplayError(f"topic {dlq_topic!r} does not exist")
        tps = [TopicPartition(dlq_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        deadline = time.monotonic() + timeout
        done: set[TopicPartition] = set()
        while len(done) < len(tps):
            if time.monotonic() > deadline:
                raise ReplayError(f"replay of {dlq_topic} did not reach the end within {timeout:.0f}s")
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    if limit is not None and report.replayed >= limit:
                        break
                    headers = dict(record.headers or ())
                    target = headers.get("original_topic", b"").decode() or dlq_topic[: -len(DLQ_SUFFIX)]
                    kept = [(k, v) for k, v in record.headers or () if k in ("ce_id", "ce_type")]
                    kept.append((REPLAYED_HEADER, f"{dlq_topic}:{record.partition}:{record.offset}".encode()))
                    await producer.send_and_wait(target, record.value, key=record.key, headers=kept)
                    await consumer.commit({tp: record.offset + 1})
                    report.replayed += 1
                    report.by_target[target] = report.by_target.get(target, 0) + 1
            if limit is not None and report.replayed >= limit:
                break
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    done.add(tp)
        return report
    finally:
        await producer.stop()
        await consumer.stop()
