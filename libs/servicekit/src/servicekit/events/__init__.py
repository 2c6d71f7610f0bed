"""Producing (outbox + relay) and consuming (inbox + retries + DLQ) events."""

from servicekit.events import outbox
from servicekit.events.consumer import ConsumerSpec, EventConsumer, Handler, RetryPolicy
from servicekit.events.models import IdempotencyRecord, InboxEntry, OutboxMessage
from servicekit.events.relay import OutboxRelay

__all__ = [
    "ConsumerSpec",
    "EventConsumer",
    "Handler",
    "IdempotencyRecord",
    "InboxEntry",
    "OutboxMessage",
    "OutboxRelay",
    "RetryPolicy",
    "outbox",
]
