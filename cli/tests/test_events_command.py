"""`ecom events` against the real embedded broker and real service databases."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import insert
from typer.testing import CliRunner

from ecom_cli.main import app
from servicekit.db import Database
from servicekit.events import OutboxMessage
from servicekit.events.kafka import ensure_topics, with_dead_letters
from servicekit.events.replay import replay_dead_letters

runner = CliRunner()


async def _traffic(bootstrap: str, topic: str, group: str) -> None:
    """5 records on two partitions (sent in one batch), a group that committed 1 of partition 0's,
    and 2 dead letters of which 1 was replayed (to another topic, so the first keeps its 5)."""
    await ensure_topics(bootstrap, [*with_dead_letters([topic]), f"{topic}.again"], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"{}", partition=i % 2) for i in range(5)]
        await asyncio.gather(*sent)
        for _ in range(2):
            await producer.send_and_wait(
                f"{topic}.dlq", b"{}", partition=0, headers=[("original_topic", f"{topic}.again".encode())]
            )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 1})
    finally:
        await consumer.stop()
    await replay_dead_letters(bootstrap, f"{topic}.dlq", limit=1)


async def _outbox(var_dir: Path, unpublished: int, failing: int) -> None:
    database = Database(f"sqlite+aiosqlite:///{var_dir / 'customer.db'}")
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(
                lambda sync: OutboxMessage.metadata.create_all(sync, tables=[OutboxMessage.__table__])  # type: ignore[attr-defined]
            )
            now = datetime.now(UTC)
            rows = [
                {
                    "event_id": uuid.uuid4().hex,
                    "event_type": "ecom.test.happened.v1",
                    "topic": "t",
                    "key": "k",
                    "payload": b"{}",
                    "created_at": now,
                    "published_at": now if i >= unpublished else None,
                    "attempts": 1 if i < failing else 0,
                }
                for i in range(unpublished + 3)
            ]
            await connection.execute(insert(OutboxMessage.__table__), rows)  # type: ignore[attr-defined]
    finally:
        await database.dispose()


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for prefix in ("GATEWAY", "CUSTOMER", "PRODUCT", "SYNC", "ANALYTICS"):
        monkeypatch.delenv(f"{prefix}_DATABASE_URL", raising=False)
    return tmp_path


def test_events_reports_topic_ends_group_lag_outbox_backlog_and_dead_letters(
    kafka_bootstrap: str, var_dir: Path
) -> None:
    topic, group = f"cli.events.{uuid.uuid4().hex[:8]}", f"cli-events-{uuid.uuid4().hex[:8]}"
    asyncio.run(_traffic(kafka_bootstrap, topic, group))
    asyncio.run(_outbox(var_dir, unpublished=4, failing=1))

    result = runner.invoke(
        app, ["events", "--json", "--bootstrap-servers", kafka_bootstrap, "--var-dir", str(var_dir)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["topics"][topic] == {"end": 5, "partitions": {"0": 3, "1": 2}}
    assert report["consumer_groups"][group]["partitions"] == [
        {"topic": topic, "partition": 0, "committed": 1, "end": 3, "lag": 2}
    ]
    assert report["outbox"]["customer"]["backlog"] == 4
    assert report["outbox"]["customer"]["failing"] == 1
    assert "product" not in report["outbox"]  # no database in var/: not guessed
    assert report["dead_letters"][f"{topic}.dlq"] == {"events": 2, "not_replayed": 1}


def test_events_prints_tables_with_the_replay_hint(kafka_bootstrap: str, var_dir: Path) -> None:
    topic, group = f"cli.events.{uuid.uuid4().hex[:8]}", f"cli-events-{uuid.uuid4().hex[:8]}"
    asyncio.run(_traffic(kafka_bootstrap, topic, group))
    result = runner.invoke(
        app,
        ["events", "--bootstrap-servers", kafka_bootstrap, "--var-dir", str(var_dir)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for title in ("Topics", "Consumer groups", "Outbox", "Dead letters", "ecom dlq replay"):
        assert title in result.output
    assert topic in result.output


def test_events_without_a_broker_fails_clearly(var_dir: Path) -> None:
    from servicekit.broker import free_port

    result = runner.invoke(
        app,
        [
            "events",
            "--bootstrap-servers",
            f"127.0.0.1:{free_port()}",
            "--var-dir",
            str(var_dir),
            "--timeout",
            "2",
        ],
    )
    assert result.exit_code == 1
    assert "cannot read the broker" in result.output
    assert "Traceback" not in result.output
