"""`ecom dlq replay` against the real embedded broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from ecom_cli.main import app
from servicekit.events.kafka import ensure_topics, with_dead_letters

runner = CliRunner()


async def _dead_letters(bootstrap: str, topic: str, count: int) -> None:
    await ensure_topics(bootstrap, with_dead_letters([topic]), partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(
                f"{topic}.dlq", b'{"x": %d}' % i, key=b"k", headers=[("original_topic", topic.encode())]
            )
    finally:
        await producer.stop()


def test_replay_reports_what_it_republished_then_nothing(kafka_bootstrap: str) -> None:
    asyncio.run(_dead_letters(kafka_bootstrap, "cli.replay.orders", 2))

    command = ["dlq", "replay", "cli.replay.orders.dlq", "--bootstrap-servers", kafka_bootstrap]
    first = runner.invoke(app, command)
    second = runner.invoke(app, command)

    assert first.exit_code == 0, first.output
    assert "replayed 2 event(s) to cli.replay.orders" in first.output
    assert second.exit_code == 0
    assert "nothing to replay" in second.output


def test_replay_of_a_topic_that_is_not_a_dlq_fails_clearly(kafka_bootstrap: str) -> None:
    result = runner.invoke(app, ["dlq", "replay", "ecom.orders.v1", "--bootstrap-servers", kafka_bootstrap])
    assert result.exit_code == 1
    assert "not a dead-letter topic" in result.output
