"""JSON Schemas of the envelope and of every registered event, and validation of emitted events."""

from __future__ import annotations

import copy
import re
from typing import Any

import pydantic_core
from pydantic import ValidationError

from contracts.envelope import CloudEvent
from contracts.registry import EventSpec, UnknownEventType, all_specs, spec_for

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
LOCAL_DEFS_PREFIX = "#/$defs/"

# Attributes every emitted event carries (CloudEvent fills in the defaults and serialises them).
ENVELOPE_REQUIRED: tuple[str, ...] = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "data",
)

# CloudEvents 1.0: extension attribute names are lower-case ASCII letters or digits.
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


class EventContractError(ValueError):
    """An event that does not satisfy its contract: unknown type, bad envelope or bad `data`."""


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of the CloudEvents envelope as emitted, whatever the event type."""
    schema = CloudEvent.model_json_schema()
    schema["required"] = [name for name in schema["properties"] if name in ENVELOPE_REQUIRED]
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def payload_schema(spec: EventSpec) -> dict[str, Any]:
    """The JSON Schema of an event's `data` (its nested models under a top-level `$defs`)."""
    return spec.data_model.model_json_schema()


def event_schema(spec: EventSpec) -> dict[str, Any]:
    """The JSON Schema of a whole event of this type: the envelope with `type` fixed and `data` typed."""
    schema = envelope_schema()
    del schema["$schema"]
    data = payload_schema(spec)
    defs = merge_defs(schema.pop("$defs", {}), data.pop("$defs", {}))
    properties: dict[str, Any] = schema["properties"]
    properties["type"] = {
        "const": spec.type,
        "description": "The event type",
        "title": "Type",
        "type": "string",
    }
    properties["data"] = data
    schema["title"] = spec.type
    schema["description"] = spec.description
    if defs:
        schema["$defs"] = defs
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def all_schemas() -> dict[str, dict[str, Any]]:
    """The schema of every registered event, keyed by event type."""
    return {spec.type: event_schema(spec) for spec in all_specs()}


def merge_defs(*groups: dict[str, Any]) -> dict[str, Any]:
    """Merge `$defs` maps; two different schemas under one name are an error, not a silent overwrite."""
    merged: dict[str, Any] = {}
    for group in groups:
        for name, schema in group.items():
            if name in merged and merged[name] != schema:
                raise ValueError(f"two different schemas are both named {name!r}; rename one of the models")
            merged[name] = schema
    return dict(sorted(merged.items()))


def rewrite_refs(schema: Any, old_prefix: str, new_prefix: str) -> Any:
    """A deep copy of `schema` with every `$ref` starting with `old_prefix` moved to `new_prefix`."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(old_prefix):
                out[key] = new_prefix + value[len(old_prefix) :]
            else:
                out[key] = rewrite_refs(value, old_prefix, new_prefix)
        return out
    if isinstance(schema, list):
        return [rewrite_refs(item, old_prefix, new_prefix) for item in schema]
    return copy.deepcopy(schema)


def validate_event(event: CloudEvent, *, topic: str | None = None) -> None:
    """Raise EventContractError unless `event` is a registered type whose envelope and `data` match.

    Checks the event as it travels: the envelope is re-read from its JSON and `data` is validated in
    JSON mode against the registered payload model. With `topic`, also checks the event is on its topic.
    """
    try:
        spec = spec_for(event.type)
    except UnknownEventType:
        known = ", ".join(s.type for s in all_specs())
        raise EventContractError(
            f"unknown event type {event.type!r}: register it in libs/contracts (known: {known})"
        ) from None
    label = f"{event.type} event {event.id!r}"

    try:
        wire = CloudEvent.from_json_bytes(event.to_json_bytes())
    except (ValidationError, pydantic_core.PydanticSerializationError) as exc:
        raise EventContractError(f"{label}: invalid envelope: {_describe(exc)}") from None
    bad_names = sorted(name for name in (wire.model_extra or {}) if not _EXTENSION_NAME.match(name))
    if bad_names:
        raise EventContractError(
            f"{label}: invalid CloudEvents extension name(s) {', '.join(bad_names)} "
            "(lower-case letters and digits only)"
        )

    try:
        spec.data_model.model_validate_json(pydantic_core.to_json(wire.data))
    except ValidationError as exc:
        raise EventContractError(
            f"{label}: data does not match {spec.data_model.__name__}: {_describe(exc, prefix='data')}"
        ) from None

    if topic is not None and topic != spec.topic:
        raise EventContractError(f"{label}: published on {topic!r}, but its topic is {spec.topic!r}")


def validate_event_json(raw: bytes | str, *, topic: str | None = None) -> CloudEvent:
    """Parse a structured-mode event as read from Kafka and validate it; returns the event."""
    try:
        event = CloudEvent.from_json_bytes(raw)
    except ValidationError as exc:
        raise EventContractError(f"not a CloudEvent: {_describe(exc)}") from None
    validate_event(event, topic=topic)
    return event


def _describe(exc: Exception, prefix: str = "") -> str:
    # Values are left out on purpose: an error message must not leak a payload into logs.
    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        parts.append(f"{location or '(root)'}: {error['msg']}")
    return "; ".join(parts)
