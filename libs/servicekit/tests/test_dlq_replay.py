"""Replaying a dead-letter topic puts its events back where they failed, once."""

from __future__ import annotations

import pytest

from contracts import CloudEvent
from contracts.topics import dlq_topic
from servicekit.events.replay import ReplayError, replay_dead_letters

from .support import keyed, make_event, new_topic, produce_raw, read_all


async def test_replay_publishes_dead_letters_back_to_their_topic_once(kafka_bootstrap: str) -> None:
    topic = await new_topic(kafka_bootstrap)
    failed = [make_event(f"k{i}", 1) for i in range(3)]
    await produce_raw(kafka_bootstrap, dlq_topic(topic), keyed(failed))

    first = await replay_dead_letters(kafka_bootstrap, dlq_topic(topic))
    second = await replay_dead_letters(kafka_bootstrap, dlq_topic(topic))

    assert first.replayed == 3
    assert first.by_target == {topic: 3}
    assert second.replayed == 0
    back = await read_all(kafka_bootstrap, topic)
    assert sorted(CloudEvent.from_json_bytes(r.value or b"").id for r in back) == sorted(e.id for e in failed)
    assert all(r.key == CloudEvent.from_json_bytes(r.value or b"").subject.encode() for r in back)


async def test_replay_refuses_a_topic_that_is_not_a_dead_letter_topic(kafka_bootstrap: str) -> None:
    with pytest.raises(ReplayError, match="not a dead-letter topic"):
        await replay_dead_letters(kafka_bootstrap, "ecom.customers.v1")
