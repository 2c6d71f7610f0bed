"""Ecom event contracts: the envelope, the topics, and the registry of event types."""

from contracts.envelope import CloudEvent, uuid7
from contracts.registry import (
    EventData,
    EventSpec,
    UnknownEventType,
    all_specs,
    build_event,
    parse_data,
    register,
    spec_for,
)

__all__ = [
    "CloudEvent",
    "EventData",
    "EventSpec",
    "UnknownEventType",
    "all_specs",
    "build_event",
    "parse_data",
    "register",
    "spec_for",
    "uuid7",
]
