"""Producing (outbox + relay) and consuming (inbox + retries + DLQ) events."""

from servicekit.events import outbox
from servicekit.events.consumer import (
    BatchHandler,
    ConsumerSpec,
    EventConsumer,
    Handler,
    RetryPolicy,
    handle_many,
)
from servicekit.events.models import IdempotencyRecord, InboxEntry, OutboxMessage
from servicekit.events.relay import OutboxRelay

__all__ = [
    "BatchHandler",
    "ConsumerSpec",
    "EventConsumer",
    "Handler",
    "IdempotencyRecord",
    "InboxEntry",
    "OutboxMessage",
    "OutboxRelay",
    "RetryPolicy",
    "handle_many",
    "outbox",
]
