"""Validating tracked events one by one and staging the accepted ones on ecom.activity.v1."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError

from analytics_service.channels import DEFAULT_CHANNEL, channel_key
from analytics_service.tracking.schemas import RejectedEvent, TrackEvent, TrackResult
from contracts import build_event
from contracts.catalog.activity import ACTIVITY_NAMES, ActivityTracked
from servicekit.bounds import MAX_AMOUNT, JSONLimitError, check_json
from servicekit.events import outbox
from servicekit.lean import Transaction
from servicekit.metrics import increment_on_commit

PRODUCT_EVENTS = frozenset({"Product Viewed", "Product Added", "Product Removed"})
PROPERTIES_DEPTH = 4
# The properties the store reads an amount from (an Order Completed's revenue, or its total without one)
AMOUNT_PROPERTIES = ("revenue", "total")

EVENTS_ACCEPTED = Counter("analytics_events_accepted_total", "Events accepted by POST /v1/track")
EVENTS_REJECTED = Counter("analytics_events_rejected_total", "Events rejected by POST /v1/track (bad input)")


@dataclass(frozen=True)
class TrackLimits:
    max_future: timedelta
    max_age: timedelta
    max_properties_bytes: int


def _field_errors(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors()]


def check_event(raw: Any, *, now: datetime, limits: TrackLimits) -> tuple[TrackEvent | None, list[str]]:
    """The event if it is acceptable, else the reasons it is not."""
    if not isinstance(raw, dict):
        return None, ["not a JSON object"]
    try:
        event = TrackEvent.model_validate(raw)
    except ValidationError as exc:
        return None, _field_errors(exc)
    errors: list[str] = []
    if event.event not in ACTIVITY_NAMES:
        errors.append(f"event: unknown event name {event.event!r} (one of: {', '.join(ACTIVITY_NAMES)})")
    if event.anonymous_id is None and event.customer_id is None:
        errors.append("anonymous_id or customer_id is required")
    if event.event == "Identify" and event.customer_id is None:
        errors.append("customer_id: Identify needs the customer id")
    if event.event != "Identify" and event.session_id is None:
        errors.append("session_id is required")
    # In UTC from here on: the consumer takes an event's day from its timestamp as published, and every
    # other day of the store (orders, KPIs, the metrics' "today") is a UTC day.
    moment = (event.timestamp if event.timestamp.tzinfo else event.timestamp.replace(tzinfo=UTC)).astimezone(
        UTC
    )
    if moment > now + limits.max_future:
        errors.append(f"timestamp: more than {int(limits.max_future.total_seconds())} s in the future")
    if moment < now - limits.max_age:
        errors.append(f"timestamp: older than {limits.max_age.days} days")
    try:
        check_json(event.properties, max_depth=PROPERTIES_DEPTH)
        size = len(json.dumps(event.properties, separators=(",", ":"), ensure_ascii=False).encode())
        if size > limits.max_properties_bytes:
            errors.append(f"properties: {size} bytes, more than {limits.max_properties_bytes}")
    except JSONLimitError as exc:
        errors.append(f"properties{('.' + exc.path) if exc.path else ''}: {exc}")
    props = event.properties
    if event.event in PRODUCT_EVENTS and not (
        isinstance(props.get("sku"), str) and 0 < len(props["sku"]) <= 100
    ):
        errors.append("properties.sku: product events need the SKU (a string of 1 to 100 characters)")
    if event.event == "Order Completed" and not (
        isinstance(props.get("order_id"), str) and 0 < len(props["order_id"]) <= 64
    ):
        errors.append(
            "properties.order_id: Order Completed needs the order id (a string of 1 to 64 characters)"
        )
    for key in AMOUNT_PROPERTIES:
        if key in props and (problem := _amount_problem(props[key])) is not None:
            errors.append(f"properties.{key}: {problem}")
    return (None, errors) if errors else (event.model_copy(update={"timestamp": moment}), [])


def _amount_problem(value: Any) -> str | None:
    """Why `value` is no amount of money (a JSON number or numeric text from 0 to `MAX_AMOUNT`)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return "an amount is a number (or numeric text)"
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        return f"{str(value)[:40]!r} is not a number"
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
        return f"an amount lies between 0 and {MAX_AMOUNT:,}"
    return None


def to_tracked(event: TrackEvent, *, received_at: datetime) -> ActivityTracked:
    return ActivityTracked(
        message_id=event.message_id,
        event=event.event,
        timestamp=event.timestamp,
        received_at=received_at,
        session_id=event.session_id,
        anonymous_id=event.anonymous_id,
        customer_id=event.customer_id,
        channel=channel_key(event.channel or "") or DEFAULT_CHANNEL,
        campaign=(event.campaign or "").strip(),
        properties={k: v for k, v in event.properties.items() if k != "traits"},
    )


async def track(
    transaction: Transaction,
    *,
    batch: list[Any],
    limits: TrackLimits,
    unreadable: dict[int, str] | None = None,
) -> TrackResult:
    """Check every event; stage the acceptable ones for ecom.activity.v1 (one outbox row each).
    `unreadable`: events the edge took out of the body (`null` in `batch`) for breaking the JSON bounds
    (a NUL, a number that is no number, nesting, a repeated key), with the reason, by index.

    The storefront's clicks are the platform's busiest writer and write nothing but outbox rows, so the
    request stages them in a lean transaction (`Database.transaction()`), not an ORM session."""
    now = datetime.now(UTC)
    rejected: list[RejectedEvent] = []
    staged = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(batch):
        if unreadable and index in unreadable:
            event, errors, message_id = None, [unreadable[index]], None
        else:
            event, errors = check_event(raw, now=now, limits=limits)
            message_id = raw.get("message_id") if isinstance(raw, dict) else None
        if event is not None and event.message_id in seen:
            errors = [f"message_id: repeats the message id of event {seen[event.message_id]}"]
            event = None
        if event is None:
            rejected.append(
                RejectedEvent(
                    index=index, message_id=message_id if isinstance(message_id, str) else None, errors=errors
                )
            )
            continue
        seen[event.message_id] = index
        tracked = to_tracked(event, received_at=now)
        key = event.session_id or event.anonymous_id or event.customer_id
        assert key is not None
        staged.append(build_event("ecom.activity.tracked.v1", tracked, subject=key))
    await outbox.add_many(transaction, staged)
    increment_on_commit(transaction, EVENTS_ACCEPTED, len(staged))
    EVENTS_REJECTED.inc(len(rejected))
    return TrackResult(accepted=len(staged), rejected=rejected)
