"""The CloudEvents envelope and its UUIDv7 ids."""

import time
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import CloudEvent, uuid7


def test_event_survives_a_json_round_trip() -> None:
    event = CloudEvent(
        source="/customer-service",
        type="ecom.customer.created.v1",
        subject="c-1",
        data={"customer_id": "c-1", "country": None},
        sequence=3,
        correlationid="corr-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )

    parsed = CloudEvent.from_json_bytes(event.to_json_bytes())

    assert parsed == event


def test_unset_optional_attributes_are_left_out_of_the_json() -> None:
    event = CloudEvent(source="/s", type="t", subject="x")

    raw = event.to_json_bytes().decode()

    assert "sequence" not in raw
    assert "correlationid" not in raw
    assert "traceparent" not in raw


def test_extension_attributes_survive_a_round_trip() -> None:
    event = CloudEvent(source="/s", type="t", subject="x", tenantid="acme")

    parsed = CloudEvent.from_json_bytes(event.to_json_bytes())

    assert parsed.model_extra == {"tenantid": "acme"}


def test_event_without_subject_is_rejected() -> None:
    with pytest.raises(ValidationError):
        CloudEvent.from_json_bytes(b'{"specversion": "1.0", "source": "/s", "type": "t"}')


def test_event_time_defaults_to_now_in_utc() -> None:
    event = CloudEvent(source="/s", type="t", subject="x")

    assert event.time.tzinfo is not None
    assert event.time.utcoffset() == UTC.utcoffset(None)


def test_uuid7_is_version_7_rfc_variant() -> None:
    value = uuid7()

    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_uuid7_carries_its_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000

    millis = value.int >> 80

    assert before <= millis <= after


def test_uuid7_is_ordered_across_milliseconds() -> None:
    values = []
    for _ in range(5):
        values.append(uuid7())
        time.sleep(0.002)

    assert values == sorted(values)
    assert [str(v) for v in values] == sorted(str(v) for v in values)


def test_uuid7_values_are_unique() -> None:
    assert len({uuid7() for _ in range(10_000)}) == 10_000


def test_default_event_id_is_a_uuid7() -> None:
    event = CloudEvent(source="/s", type="t", subject="x", time=datetime(2025, 1, 1, tzinfo=UTC))

    assert uuid.UUID(event.id).version == 7
