"""What the event pipeline holds right now: topic ends, consumer-group lag, outbox backlogs, DLQ sizes.

Partition ends are read as the high watermark of a fetch, not with ListOffsets (`end_offsets()`): the
embedded broker answers ListOffsets with wrong values after a batched send (see ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, inspect, select
from sqlmodel import col

from contracts.topics import DLQ_SUFFIX
from servicekit.db import Database
from servicekit.events.models import OutboxMessage
from servicekit.events.replay import REPLAY_GROUP_PREFIX


@dataclass(frozen=True)
class PartitionEnd:
    topic: str
    partition: int
    start: int  # earliest offset still held
    end: int  # high watermark: the offset the next record gets

    @property
    def records(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        """Records after the committed offset (0 when the offset is past the end)."""
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class BrokerStatus:
    partitions: list[PartitionEnd]
    groups: list[GroupLag]
    group_names: list[str]  # every group looked at, with committed offsets or not

    def topics(self) -> dict[str, list[PartitionEnd]]:
        result: dict[str, list[PartitionEnd]] = {}
        for partition in self.partitions:
            result.setdefault(partition.topic, []).append(partition)
        return result

    def dead_letter_topics(self) -> dict[str, list[PartitionEnd]]:
        return {topic: parts for topic, parts in self.topics().items() if topic.endswith(DLQ_SUFFIX)}

    def not_replayed(self, dlq_topic: str) -> int:
        """Records of a DLQ after what `ecom dlq replay` has committed (all of them if never replayed)."""
        group = f"{REPLAY_GROUP_PREFIX}.{dlq_topic}"
        committed = {
            g.partition: g.committed for g in self.groups if g.group == group and g.topic == dlq_topic
        }
        return sum(
            max(0, p.end - max(p.start, committed.get(p.partition, p.start)))
            for p in self.topics().get(dlq_topic, [])
        )


@dataclass(frozen=True)
class OutboxStatus:
    backlog: int  # rows not yet published
    failing: int  # of those, rows whose publication failed at least once
    oldest: datetime | None  # created_at of the oldest unpublished row


async def partition_ends(bootstrap_servers: str, *, timeout: float = 15.0) -> list[PartitionEnd]:
    """Every partition of every topic with its earliest offset and its high watermark."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
        max_partition_fetch_bytes=1,  # the watermark is what is wanted, not the records
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        await consumer.start()
        await consumer._client.force_metadata_update()
        topics = await consumer.topics()
        tps = [
            TopicPartition(topic, partition)
            for topic in sorted(topics)
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return []
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() > deadline:
                missing = [str(tp) for tp in tps if consumer.highwater(tp) is None]
                raise TimeoutError(f"no high watermark within {timeout:.0f}s for {', '.join(missing)}")
            await consumer.getmany(timeout_ms=100)
        return [
            PartitionEnd(tp.topic, tp.partition, starts.get(tp, 0), int(consumer.highwater(tp) or 0))
            for tp in tps
        ]
    finally:
        await consumer.stop()


async def consumer_groups(bootstrap_servers: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        groups = await admin.list_consumer_groups()
    finally:
        await admin.close()
    return sorted({group for group, protocol in groups if protocol in ("consumer", "")})


async def committed_offsets(
    bootstrap_servers: str, group: str, partitions: list[PartitionEnd]
) -> list[GroupLag]:
    """The group's committed offset of each partition it has one for (OffsetFetch, without joining)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False)
    try:
        await consumer.start()
        offsets = await asyncio.gather(
            *(consumer.committed(TopicPartition(p.topic, p.partition)) for p in partitions)
        )
    finally:
        await consumer.stop()
    return [
        GroupLag(group, p.topic, p.partition, int(offset), p.end)
        for p, offset in zip(partitions, offsets, strict=True)
        if offset is not None and offset >= 0
    ]


def groups_in_broker_data(data_dir: Path) -> list[str]:
    """Consumer groups the durable embedded broker keeps offsets for under `data_dir` (its S3 bucket:
    `<bucket>/clusters/<cluster>/groups/consumers/<group>/`). Its ListGroups answers nothing with S3
    storage, so the groups are found where it stores them."""
    return sorted(
        {
            path.name
            for path in data_dir.glob("*/clusters/*/groups/consumers/*")
            if path.is_dir() and (path / "offsets").is_dir()
        }
    )


async def broker_status(
    bootstrap_servers: str, *, timeout: float = 15.0, extra_groups: Iterable[str] = ()
) -> BrokerStatus:
    """Partition ends and the committed offsets of every group the broker lists, plus `extra_groups`."""
    partitions = await partition_ends(bootstrap_servers, timeout=timeout)
    names = sorted(set(await consumer_groups(bootstrap_servers)) | set(extra_groups))
    lags: list[GroupLag] = []
    for group in names:
        lags += await committed_offsets(bootstrap_servers, group, partitions)
    return BrokerStatus(partitions, lags, names)


async def outbox_status(database_url: str) -> OutboxStatus | None:
    """The outbox backlog of one service's database; None when it has no outbox table."""
    database = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            has_outbox = await connection.run_sync(
                lambda sync: inspect(sync).has_table(OutboxMessage.__tablename__)
            )
            if not has_outbox:
                return None
            unpublished = col(OutboxMessage.published_at).is_(None)
            row = (
                await connection.execute(
                    select(
                        func.count(),
                        func.count().filter(col(OutboxMessage.attempts) > 0),
                        func.min(col(OutboxMessage.created_at)),
                    )
                    .select_from(OutboxMessage)
                    .where(unpublished)
                )
            ).one()
    finally:
        await database.dispose()
    oldest = row[2]
    if isinstance(oldest, datetime) and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return OutboxStatus(backlog=int(row[0]), failing=int(row[1]), oldest=oldest)
