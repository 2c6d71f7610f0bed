"""A channel's answer to a push, read without a model per item: the answer that echoes what was pushed
is taken without decoding; any other is decoded once and compared type-strictly; what is not a push
answer is refused as `PushAnswer` refuses it. Desired states are stored as canonical JSON text."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from sync_service.listings.compute import context_digest, state_hash, state_json
from sync_service.listings.models import Listing
from sync_service.push.deliveries import Pending, Sent
from sync_service.push.pipeline import _echo, _held_digest, parse_answer
from sync_service.reference_channel import HeldState, PushAnswer

STATE = {"sku": "A-1", "price": "19.99", "quantity": 1, "published": True, "attributes": {"w": 1.5}}


def _pending(state: dict[str, Any], sku: str = "A-1", text: str | None = None) -> Pending:
    sent = Sent(sku, 3, state_hash(state) or "", True, datetime.now(UTC))
    return Pending(sent, state_json(state) if text is None else text)


def _as_the_reference_channel_answers(held: dict[str, dict[str, Any] | None]) -> bytes:
    answer = PushAnswer(listings=[HeldState(sku=sku, state=state) for sku, state in held.items()])
    return answer.model_dump_json().encode()


def test_an_answer_echoing_the_pushed_states_is_taken_without_decoding() -> None:
    rows = [_pending(STATE), _pending({**STATE, "sku": "A-2"}, "A-2")]
    received = [json.loads(row.desired_json) for row in rows]  # as the channel parses the push
    content = _as_the_reference_channel_answers({"A-1": received[0], "A-2": received[1]})
    assert content == _echo(rows)  # the reference channel's answer is the echo, byte for byte
    answer = parse_answer(bytearray(content), _echo(rows))
    assert answer is not None
    assert answer.echoed
    assert answer.held == {}


@pytest.mark.parametrize("quantity", [1.0, True, "1", None])
def test_a_held_state_differing_only_in_a_value_s_type_is_not_the_pushed_one(quantity: Any) -> None:
    row = _pending(STATE)
    held = {**STATE, "quantity": quantity}
    answer = parse_answer(_as_the_reference_channel_answers({"A-1": held}), _echo([row]))
    assert answer is not None
    assert not answer.echoed
    assert answer.held["A-1"] == held
    digest = _held_digest(answer.held["A-1"], row)
    assert digest == state_hash(held) != row.sent.digest


def test_a_held_state_equal_to_the_pushed_one_in_another_spelling_matches() -> None:
    """Keys in another order, spaces, an escaped character: the same state, so the pushed one's hash."""
    row = _pending({**STATE, "title": "Café"})
    spelled = json.dumps(
        {"listings": [{"state": dict(reversed(list(json.loads(row.desired_json).items()))), "sku": "A-1"}]},
        ensure_ascii=False,
        indent=1,
    ).encode()
    answer = parse_answer(spelled, _echo([row]))
    assert answer is not None
    assert not answer.echoed
    assert _held_digest(answer.held["A-1"], row) == row.sent.digest
    # pushed as the database held it in another spelling (not canonical): compared by hash
    loose = _pending({**STATE, "title": "Café"}, text=json.dumps({**STATE, "title": "Café"}))
    assert _held_digest(answer.held["A-1"], loose) == loose.sent.digest
    assert _held_digest(None, row) is None


@pytest.mark.parametrize(
    "content",
    [
        b"<html>not json",
        b"\xff\xfe",
        b"[]",
        b'{"listings": {}}',
        b'{"other": []}',
        b'{"listings": [1]}',
        b'{"listings": [{"sku": 1, "state": null}]}',
        b'{"listings": [{"sku": "A-1"}]}',
        b'{"listings": [{"sku": "A-1", "state": []}]}',
    ],
)
def test_what_is_not_a_push_answer_is_refused_as_the_model_refuses_it(content: bytes) -> None:
    assert parse_answer(content, b"{}") is None
    with pytest.raises(ValidationError):
        PushAnswer.model_validate_json(content)


def test_a_push_answer_with_more_fields_or_no_listing_is_one() -> None:
    content = b'{"listings": [{"sku": "A-1", "state": null, "note": "x"}], "extra": 1}'
    answer = parse_answer(content, b"{}")
    assert answer is not None
    assert answer.held == {"A-1": None}
    assert parse_answer(b'{"listings": []}', b"{}") == (False, {})
    nan = parse_answer(b'{"listings": [{"sku": "A-1", "state": {"price": NaN}}]}', b"{}")
    assert nan is not None  # as the model takes it; no pushed state holds NaN
    assert _held_digest(nan.held["A-1"], _pending(STATE)) != _pending(STATE).sent.digest


def test_desired_states_are_stored_as_canonical_json_text() -> None:
    engine = sa.create_engine("sqlite://")
    table: Any = Listing.__table__  # type: ignore[attr-defined]
    table.create(engine)
    now = datetime.now(UTC)
    state = {"title": "Café", "b": [1, 1.0, True], "a": None}
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table),
            [
                {
                    "channel_id": "c",
                    "sku": sku,
                    "product_id": "p",
                    "desired": desired,
                    "desired_hash": "h",
                    "desired_at": now,
                    "publishable": True,
                    "status": "pending",
                    "created_at": now,
                    "updated_at": now,
                }
                for sku, desired in (("dict", state), ("text", state_json(state)))
            ],
        )
        stored = dict(connection.execute(sa.select(table.c.sku, sa.cast(table.c.desired, sa.Text))).all())
        read = dict(connection.execute(sa.select(table.c.sku, table.c.desired)).all())
    assert stored == {"dict": state_json(state), "text": state_json(state)}
    assert read == {"dict": state, "text": state}


class _Row:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def test_the_context_of_a_stamp_follows_the_channel_and_the_promotions_running_for_it() -> None:
    channel = _Row(
        code="web",
        kind="webhook",
        currency="EUR",
        locale="de-DE",
        price_adjustment_bp=0,
        location_codes=[],
        safety_buffer=0,
        category_ids=[],
        completeness_threshold=1.0,
    )
    now = datetime.now(UTC)
    promotion = _Row(
        promotion_id="p1",
        kind="percentage",
        percent_bp=1000,
        amount_minor=None,
        currency=None,
        skus=["A-1"],
        category_ids=[],
        channels=[],
        starts_at=now,
        ends_at=now,
    )
    elsewhere = _Row(**{**promotion.__dict__, "promotion_id": "p2", "channels": ["pos"]})
    base = context_digest(channel, [])
    assert context_digest(channel, []) == base
    assert context_digest(channel, [elsewhere]) == base  # another channel's promotion
    assert context_digest(channel, [promotion]) != base
    assert context_digest(channel, [promotion, elsewhere]) == context_digest(channel, [promotion])
    changed = _Row(**{**promotion.__dict__, "percent_bp": 2000})
    assert context_digest(channel, [changed]) != context_digest(channel, [promotion])
    for name, value in (
        ("safety_buffer", 2),
        ("currency", "USD"),
        ("price_adjustment_bp", 100),
        ("location_codes", ["wh"]),
        ("completeness_threshold", 0.5),
    ):
        assert context_digest(_Row(**{**channel.__dict__, name: value}), []) != base
