"""POST /v1/track: each event checked on its own, bad ones reported by index, good ones published on
ecom.activity.v1 and folded into the store by the service's consumer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from analytics_support import Deliverer, placed, unique
from conftest import settings_for
from sqlalchemy import func, select

from analytics_service.main import create_app
from analytics_service.warehouse.models import ActivityEvent, DailyChannelRollup, OrderFact, SessionFact
from contracts import CloudEvent
from servicekit.db import Database
from servicekit.events import outbox
from servicekit.events.models import OutboxMessage
from servicekit.testing import TestTokenIssuer, running_app


def event(name: str = "Page Viewed", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": unique("msg-"),
        "event": name,
        "timestamp": datetime.now(UTC).isoformat(),
        "session_id": "sess-1",
        "anonymous_id": "anon-1",
        "channel": "Google",
        "campaign": "spring",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


async def _track(client: httpx.AsyncClient, tokens: TestTokenIssuer, batch: Any) -> httpx.Response:
    return await client.post("/v1/track", json={"batch": batch}, headers=tokens.auth_header("events:write"))


def _rejections(response: httpx.Response, *, accepted: int) -> dict[int, str]:
    """The reasons of a 202 answer's rejected events, by index (its accepted count checked first)."""
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == accepted, body
    return {r["index"]: " ".join(r["errors"]) for r in body["rejected"]}


async def test_bad_events_are_reported_by_index_and_the_others_accepted(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    now = datetime.now(UTC)
    good = [event(), event("Product Viewed", properties={"sku": "SKU-1", "price": 9.9})]
    repeated = event()
    batch = [
        good[0],
        event("Teleported"),
        event(anonymous_id=None),
        event(session_id=None),
        event(timestamp=(now + timedelta(days=2)).isoformat()),
        event(timestamp=(now - timedelta(days=900)).isoformat()),
        event(properties={"blob": "x" * 9000}),
        event("Product Added", properties={}),
        event("Order Completed", properties={"revenue": 10}),
        "not an object",
        event(unexpected=1),
        good[1],
        repeated,
        repeated,
        event(properties={"a": {"b": {"c": {"d": {"e": 1}}}}}),
    ]
    response = await _track(client, token_issuer, batch)
    reasons = _rejections(response, accepted=3)
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14]
    assert "unknown event name" in reasons[1]
    assert "anonymous_id or customer_id" in reasons[2]
    assert "session_id" in reasons[3]
    assert "future" in reasons[4]
    assert "older than" in reasons[5]
    assert "bytes" in reasons[6]
    assert "sku" in reasons[7]
    assert "order_id" in reasons[8]
    assert "not a JSON object" in reasons[9]
    assert "unexpected" in reasons[10]
    assert "repeats the message id of event 12" in reasons[13]
    assert "deeper" in reasons[14]
    async with database.session() as session:
        staged = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.event_type == "ecom.activity.tracked.v1")
        )
    assert staged == 3


async def test_an_amount_that_is_no_amount_is_rejected_and_the_rest_kept(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    """An Order Completed's `revenue` (or `total`) that is text, negative, out of range or not a number
    was stored as no revenue and the event accepted: the event is rejected, naming the property."""

    def completed(**properties: Any) -> dict[str, Any]:
        return event(
            "Order Completed", session_id=unique("sess-"), properties={"order_id": unique("o-"), **properties}
        )

    batch = [
        completed(revenue=42.5),
        completed(revenue="abc"),
        completed(revenue=-5),
        completed(total="1e400"),
        completed(revenue=True),
        completed(revenue={"amount": 3}),
        completed(total="19.90"),
        completed(revenue=10_000_000_000),
    ]

    response = await _track(client, token_issuer, batch)

    reasons = _rejections(response, accepted=2)
    assert sorted(reasons) == [1, 2, 3, 4, 5, 7]
    assert "properties.revenue" in reasons[1]
    assert "not a number" in reasons[1]
    assert "between 0 and" in reasons[2]
    assert "properties.total" in reasons[3]
    assert "a number" in reasons[4]
    assert "a number" in reasons[5]
    assert "between 0 and" in reasons[7]


async def test_a_timestamp_that_is_a_number_or_a_bare_date_is_rejected_and_the_rest_kept(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    """1700000000 was read as Unix seconds (and 1700000000000 as milliseconds) and the event accepted; a
    storefront's 20261128 (YYYYMMDD) would be 1970-08-23. Like sync-service's partner times, the
    timestamp is RFC 3339 date-time text; each such event is rejected on its own, the others accepted."""
    recent = int(datetime.now(UTC).timestamp())
    good = event(session_id=unique("sess-"))
    batch = [
        event(timestamp=recent),
        good,
        event(timestamp=recent * 1000),
        event(timestamp=float(recent)),
        event(timestamp=datetime.now(UTC).date().isoformat()),
        event(timestamp=str(recent)),
    ]

    response = await _track(client, token_issuer, batch)

    reasons = _rejections(response, accepted=1)
    assert sorted(reasons) == [0, 2, 3, 4, 5]
    assert all("timestamp" in reason and "RFC 3339" in reason for reason in reasons.values()), reasons
    async with database.session() as session:
        staged = await session.scalars(
            select(OutboxMessage.payload).where(
                OutboxMessage.event_type == "ecom.activity.tracked.v1",
                OutboxMessage.key == good["session_id"],
            )
        )
        assert len(staged.all()) == 1


async def test_an_event_sent_with_a_utc_offset_counts_on_its_utc_day(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    """A visit at 23:30 in New York (-05:00) is 04:30 UTC the next day. The event was published with its
    offset and the consumer took the day from it, so the session counted on the local day while orders,
    KPIs and the metrics' "today" are UTC days."""
    session_id, channel = unique("sess-"), unique("tz")
    when = (datetime.now(UTC) - timedelta(days=3)).replace(hour=4, minute=30, second=0, microsecond=0)
    local = when.astimezone(timezone(timedelta(hours=-5)))
    assert local.date() != when.date()
    response = await _track(
        client, token_issuer, [event(session_id=session_id, channel=channel, timestamp=local.isoformat())]
    )
    assert response.json()["accepted"] == 1, response.text

    async with database.session() as session:
        payload = await session.scalar(select(OutboxMessage.payload).where(OutboxMessage.key == session_id))
    assert payload is not None
    published = CloudEvent.from_json_bytes(payload)
    stamp = datetime.fromisoformat(published.data["timestamp"])
    assert (stamp, stamp.utcoffset()) == (when, timedelta(0))
    await Deliverer(database)([published])

    async with database.session() as session:
        fact = await session.get(SessionFact, session_id)
        days = (
            await session.scalars(select(DailyChannelRollup.day).where(DailyChannelRollup.channel == channel))
        ).all()
    assert fact is not None
    assert list(days) == [when.date()]


async def test_an_event_the_json_bounds_refuse_is_rejected_alone_and_the_rest_kept(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    """A NUL, a lone surrogate, NaN, a number beyond 64 bits, nesting past the body's bound or a repeated
    key in one event refused the whole batch (or, for a lone surrogate in `properties`, answered 500
    when the event was published): each is now rejected by index with its reason, and the rest kept."""
    good = [event(session_id=unique("sess-")), event(session_id=unique("sess-"))]
    deep = '{"k": ' * 40 + "1" + "}" * 40
    parts = [
        json.dumps(good[0]),
        json.dumps(event(anonymous_id="a\x00b")),
        json.dumps(event(properties={"q": "x"}))[:-1] + ', "properties": {"q": "\\udfff"}}',
        json.dumps(event())[:-1] + ', "properties": {"revenue": NaN}}',
        json.dumps(event())[:-1] + ', "properties": {"n": 123456789012345678901234567890}}',
        json.dumps(event())[:-1] + f', "properties": {deep}}}',
        '{"message_id": "m-rep", "message_id": "m-rep2"}',
        json.dumps(good[1]),
    ]
    body = '{"batch": [' + ", ".join(parts) + "]}"

    response = await client.post(
        "/v1/track",
        content=body.encode(),
        headers={**token_issuer.auth_header("events:write"), "Content-Type": "application/json"},
    )

    reasons = _rejections(response, accepted=2)
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert "anonymous_id" in reasons[1]
    assert "NUL" in reasons[1]
    assert "properties.q" in reasons[2]
    assert "lone surrogate" in reasons[2]
    assert "properties.revenue" in reasons[3]
    assert "finite" in reasons[3]
    assert "properties.n" in reasons[4]
    assert "64-bit" in reasons[4]
    assert "nested deeper" in reasons[5]
    assert "message_id" in reasons[6]
    assert "more than once" in reasons[6]
    async with database.session() as session:
        staged = await session.scalars(
            select(OutboxMessage.key).where(OutboxMessage.key.in_([e["session_id"] for e in good]))
        )
        assert sorted(staged.all()) == sorted(e["session_id"] for e in good)


@pytest.mark.parametrize(
    ("body", "status_code"),
    [
        ({"batch": [{}] * 501}, 422),
        ({"events": []}, 422),
        ([1, 2], 422),
    ],
)
async def test_a_batch_that_is_not_a_batch_is_refused_whole(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, body: Any, status_code: int
) -> None:
    response = await client.post("/v1/track", json=body, headers=token_issuer.auth_header("events:write"))
    assert response.status_code == status_code
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_body_that_is_not_json_is_a_problem(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/track",
        content=b"{not json",
        headers={**token_issuer.auth_header("events:write"), "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


async def test_tracking_needs_the_events_write_scope(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/track", json={"batch": [event()]}, headers=token_issuer.auth_header("analytics:read")
    )
    assert response.status_code == 403


@pytest.fixture
async def consuming(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(database_url, kafka_bootstrap, consumers=True))
    async with running_app(app, token_issuer) as http:
        yield http


async def test_tracked_events_reach_the_rollups_through_the_broker_once(
    consuming: httpx.AsyncClient, token_issuer: TestTokenIssuer, database: Database
) -> None:
    session_id, channel = unique("sess-"), unique("chan")
    when = datetime(2026, 11, 20, 9, tzinfo=UTC)
    batch = [
        event("Page Viewed", session_id=session_id, channel=channel, timestamp=when.isoformat()),
        event(
            "Product Viewed",
            session_id=session_id,
            channel=channel,
            properties={"sku": "S"},
            timestamp=(when + timedelta(minutes=1)).isoformat(),
        ),
        event(
            "Product Added",
            session_id=session_id,
            channel=channel,
            properties={"sku": "S"},
            timestamp=(when + timedelta(minutes=2)).isoformat(),
        ),
    ]
    assert (await _track(consuming, token_issuer, batch)).json()["accepted"] == 3
    # The client retries the same batch: the message ids make it count once.
    assert (await _track(consuming, token_issuer, batch)).json()["accepted"] == 3

    async def folded() -> int:
        async with database.session() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(ActivityEvent)
                    .where(ActivityEvent.session_id == session_id)
                )
                or 0
            )

    for _ in range(200):
        if await folded() == 3:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the retried copies arrive meanwhile
    assert await folded() == 3
    async with database.session() as session:
        fact = await session.get(SessionFact, session_id)
        rollup = await session.get(DailyChannelRollup, (when.date(), channel.lower(), "spring"))
    assert fact is not None
    assert (fact.events, fact.viewed, fact.added) == (3, True, True)
    assert rollup is not None
    assert (rollup.sessions, rollup.sessions_added, rollup.events) == (1, 1, 3)

    # Other services' events reach the facts consumer the same way (here staged in this service's outbox).
    order_id = unique("order-")
    async with database.session() as session:
        await outbox.add(session, placed(order_id, unique("cust-"), when, [("S", 2, "15.00")]))
    for _ in range(200):
        async with database.session() as session:
            order = await session.get(OrderFact, order_id)
        if order is not None:
            break
        await asyncio.sleep(0.05)
    assert order is not None
    assert (order.placed, order.total_minor) == (True, 3000)
