"""aiokafka wiring: producers, topic creation, and waiting for the broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from contracts.topics import dlq_topic
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


def make_producer(settings: ServiceSettings, *, client_id: str | None = None) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas; idempotence only when the broker supports it."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id or settings.service_name,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=0,
        request_timeout_ms=15_000,
    )


def with_dead_letters(topics: Iterable[str]) -> list[str]:
    """The topics plus their `.dlq` companions, without duplicates, in a stable order."""
    result: list[str] = []
    for topic in topics:
        for name in (topic, dlq_topic(topic)):
            if name not in result:
                result.append(name)
    return result


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], *, partitions: int = 3, replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in missing]
        )
        created = []
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:
                raise KafkaError(f"creating topic {name} failed with error code {code}")
        if created:
            log.info("created topics", extra={"topics": created})
        return created
    finally:
        await admin.close()


async def start_with_retry(
    start: object, *, what: str, stop_event: asyncio.Event, max_delay: float = 5.0
) -> bool:
    """Call the async `start` until it succeeds or `stop_event` is set; returns whether it started."""
    delay = 0.2
    while not stop_event.is_set():
        try:
            await start()  # type: ignore[operator]
            return True
        except (KafkaError, OSError) as exc:
            log.warning("%s: broker not reachable, retrying in %.1fs: %s", what, delay, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), delay)
            delay = min(delay * 2, max_delay)
    return False
