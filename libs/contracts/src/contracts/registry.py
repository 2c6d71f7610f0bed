"""The single table of event types: which topic each travels on and the schema of its `data`."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from contracts.envelope import CloudEvent


class EventData(BaseModel):
    """Base of every event payload: business facts and ids, never clear-text PII."""

    model_config = ConfigDict(extra="forbid")


D = TypeVar("D", bound=EventData)


@dataclass(frozen=True)
class EventSpec:
    type: str
    topic: str
    data_model: builtins.type[EventData]  # `type` alone would mean the field above
    producer: str
    description: str


class UnknownEventType(LookupError):
    pass


_REGISTRY: dict[str, EventSpec] = {}


def register(event_type: str, *, topic: str, producer: str, description: str) -> Any:
    """Class decorator that registers a payload model under `event_type`."""

    def decorate(model: type[D]) -> type[D]:
        existing = _REGISTRY.get(event_type)
        if existing is not None and existing.data_model is not model:
            raise ValueError(f"event type {event_type!r} is already registered")
        _REGISTRY[event_type] = EventSpec(event_type, topic, model, producer, description)
        return model

    return decorate


def spec_for(event_type: str) -> EventSpec:
    _load_catalog()
    try:
        return _REGISTRY[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def all_specs() -> list[EventSpec]:
    """Every registered event type, sorted by topic then type."""
    _load_catalog()
    return sorted(_REGISTRY.values(), key=lambda s: (s.topic, s.type))


def build_event(
    event_type: str,
    data: EventData,
    *,
    subject: str,
    sequence: int | None = None,
    correlation_id: str | None = None,
    traceparent: str | None = None,
) -> CloudEvent:
    """Wrap `data` in an envelope after checking it is the registered payload of `event_type`."""
    spec = spec_for(event_type)
    if not isinstance(data, spec.data_model):
        raise TypeError(f"{event_type} carries {spec.data_model.__name__}, not {type(data).__name__}")
    return CloudEvent(
        source=f"/{spec.producer}",
        type=event_type,
        subject=subject,
        data=data.model_dump(mode="json"),
        sequence=sequence,
        correlationid=correlation_id,
        traceparent=traceparent,
    )


def parse_data(event: CloudEvent) -> EventData:
    """Validate an incoming event's `data` against its registered model."""
    return spec_for(event.type).data_model.model_validate(event.data)


def _load_catalog() -> None:
    # Importing the catalog registers every event type; done lazily to avoid an import cycle.
    import contracts.catalog  # noqa: F401
