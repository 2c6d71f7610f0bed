"""The activity fold's payload check (`parse_tracked`) accepts exactly what the `ActivityTracked` model
accepts, with equal values, and a bad event in a batch is rejected without storing its neighbours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from analytics_support import Deliverer, at, tracked, unique
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select

from analytics_service.warehouse.activity import (
    Tracked,
    TrackedEnvelope,
    _checked,
    decode_record,
    parse_tracked,
)
from analytics_service.warehouse.bulk import sqlite_moment
from analytics_service.warehouse.models import ActivityEvent
from contracts import CloudEvent
from contracts.catalog.activity import ActivityTracked
from servicekit.db import Database


def _valid() -> dict[str, Any]:
    return tracked("Product Viewed", session="s1", when=at(0), anonymous="a1", sku="SKU-1").data


def _by_model(data: Any) -> Tracked | None:
    try:
        model = ActivityTracked.model_validate(data)
    except ValidationError:
        return None
    return Tracked(
        *(getattr(model, name) for name in Tracked._fields if name in ActivityTracked.model_fields)
    )


def _by_parser(data: Any) -> Tracked | None:
    try:
        return parse_tracked(data)
    except ValidationError:
        return None


def _same(data: Any) -> None:
    by_model, by_parser = _by_model(data), _by_parser(data)
    assert (by_parser and by_parser._replace(stored_timestamp=None)) == by_model
    if by_model is not None and by_parser is not None:
        for moment in ("timestamp", "received_at"):  # same instant, same offset (the day depends on it)
            assert getattr(by_parser, moment).utcoffset() == getattr(by_model, moment).utcoffset()
        # the stored form cut from the text, when there is one, is the one formatted from the moment
        assert by_parser.stored_timestamp in (None, sqlite_moment(by_model.timestamp))
    _same_in_one_pass(data)


def _same_in_one_pass(data: Any) -> None:
    """The consumer's one-pass decoding (`decode_record`) of an envelope with this payload, read by the
    fold (`_checked` when it gave a `TrackedEnvelope`, else `parse_tracked`), gives what `parse_tracked`
    gives for the payload as JSON carries it: the same fields, moments with the same offsets and the
    same stored text, or a rejection."""
    try:
        body = json.dumps(
            {
                "specversion": "1.0",
                "id": "e1",
                "source": "/analytics-service",
                "type": "ecom.activity.tracked.v1",
                "subject": "s1",
                "time": "2026-10-05T10:00:00Z",
                "data": data,
            }
        )
    except (TypeError, ValueError):
        return  # not JSON (bytes): no record carries it
    expected = _by_parser(json.loads(body)["data"])
    event = decode_record(body.encode())
    if type(event) is TrackedEnvelope:
        try:
            got = _checked(event.data, {})
        except ValidationError:  # a moment of the right form that is no date (February 30th)
            assert expected is None
            return
        assert expected is not None
        assert got == expected
        assert got.stored_timestamp == expected.stored_timestamp
        for moment in ("timestamp", "received_at"):
            assert getattr(got, moment).utcoffset() == getattr(expected, moment).utcoffset()
    else:
        assert _by_parser(event.data) == expected


def test_the_one_pass_decoding_takes_the_track_apis_shape() -> None:
    event = decode_record(tracked("Product Viewed", session="s1", when=at(0), sku="SKU-1").to_json_bytes())
    assert type(event) is TrackedEnvelope
    assert _checked(event.data, {}) == parse_tracked(event.data)
    other = decode_record(
        CloudEvent(source="/x", type="ecom.other.v1", subject="s", data={"a": 1}).to_json_bytes()
    )
    assert type(other) is CloudEvent
    with pytest.raises(ValidationError):
        decode_record(b"not json")


ODD_VALUES = [
    None,
    "",
    "x" * 65,
    "x" * 101,
    0,
    1.5,
    True,
    [],
    {},
    {"sku": "S"},
    "Page Viewed",
    "page viewed",
    "2026-10-05T10:00:00Z",
    "2026-10-05T10:00:00.123456+05:30",
    "2026-10-05T10:00:00.1234567Z",
    "2026-10-05T10:00:00",
    "2026-10-05 10:00:00Z",
    "2026-10-05",
    "2026-02-30T10:00:00Z",
    "2026-10-05T24:00:00Z",
    "2026-10-05T10:00:00+24:00",
    "20261005T100000Z",
    1_790_000_000,
    b"bytes",
]


@pytest.mark.parametrize("field", sorted(ActivityTracked.model_fields))
@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_each_field_with_odd_values_is_judged_as_the_model_judges_it(field: str, value: Any) -> None:
    data = _valid()
    data[field] = value
    _same(data)
    del data[field]
    _same(data)


def test_unknown_fields_and_non_objects_are_rejected() -> None:
    assert _by_parser({**_valid(), "extra": 1}) is None
    for data in (None, [], "x", 1):
        with pytest.raises(ValidationError):
            parse_tracked(data)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*sorted(ActivityTracked.model_fields), "other"]),
        st.one_of(
            st.sampled_from(ODD_VALUES),
            st.text(max_size=120),
            st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
            st.datetimes(
                timezones=st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
            ).map(lambda d: d.isoformat()),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        ),
    )
)
def test_any_payload_is_judged_as_the_model_judges_it(overrides: dict[str, Any]) -> None:
    _same({**_valid(), **overrides})


async def test_a_bad_event_fails_its_batch_and_alone_is_rejected(database: Database) -> None:
    """The consumer handles a batch in one transaction and, when it fails, each event alone (the bad one
    is retried, then dead-lettered): here a batch with an unknown event name fails as a whole, the good
    events folded alone are stored, the bad one alone fails."""
    deliver = Deliverer(database)
    session_id = unique("s")
    good = [tracked("Page Viewed", session=session_id, when=at(0, h)) for h in range(3)]
    bad = CloudEvent.model_validate(
        {
            **good[0].model_dump(),
            "id": unique("e"),
            "data": {**good[0].data, "event": "Nope", "message_id": "x"},
        }
    )
    with pytest.raises(ValidationError):
        await deliver([good[0], bad, good[1]], batch=3)
    for event in good:
        await deliver([event])
    with pytest.raises(ValidationError):
        await deliver([bad])
    async with database.read() as connection:
        stored = await connection.scalar(
            select(func.count()).select_from(ActivityEvent).where(ActivityEvent.session_id == session_id)
        )
    assert stored == 3


def test_a_moment_keeps_its_offset() -> None:
    data = {**_valid(), "timestamp": "2026-10-05T23:30:00-02:00"}
    parsed = parse_tracked(data)
    assert parsed.timestamp == datetime(2026, 10, 6, 1, 30, tzinfo=UTC)
    assert parsed.timestamp.date().isoformat() == "2026-10-05"


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-05T10:00:00Z",
        "2026-10-05T10:00:00+00:00",
        "2026-10-05T10:00:00-00:00",
        "2026-10-05T10:00:00.5Z",
        "2026-10-05T10:00:00.05Z",
        "2026-10-05T10:00:00.123+00:00",
        "2026-10-05T10:00:00.12345Z",
        "2026-10-05T23:59:59.999999Z",
        "2026-10-05T10:00:00.123456+05:30",
        "2026-10-05T01:00:00-02:00",
    ],
)
def test_the_stored_form_cut_from_the_text_is_the_formatted_one(text: str) -> None:
    parsed = parse_tracked({**_valid(), "timestamp": text})
    utc = text.endswith(("Z", "+00:00", "-00:00"))
    assert parsed.stored_timestamp == (sqlite_moment(parsed.timestamp) if utc else None)


def test_received_moments_read_once_per_text_are_the_same_moments() -> None:
    received: dict[str, datetime] = {}
    payloads = [
        {**_valid(), "received_at": text}
        for text in ("2026-10-05T10:00:00Z", "2026-10-05T12:00:00.25+02:00", "2026-10-05T10:00:00Z")
    ]
    for data in payloads:
        parsed = parse_tracked(data, received)
        assert parsed == parse_tracked(data)
        assert parsed.received_at.utcoffset() == parse_tracked(data).received_at.utcoffset()
    assert len(received) == 2
    for odd in ("2026-10-05T10:00:00", "2026-10-05", 5):  # not the plain form: judged by the model
        assert _same_with(received, {**_valid(), "received_at": odd})
    assert len(received) == 2


def _same_with(received: dict[str, datetime], data: dict[str, Any]) -> bool:
    try:
        expected = parse_tracked(data)
    except ValidationError:
        with pytest.raises(ValidationError):
            parse_tracked(data, received)
        return True
    return parse_tracked(data, received) == expected
