"""Generate docs/events.md and docs/asyncapi.yaml from the registry (`ecom-contracts generate|check`)."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from contracts import topics
from contracts.registry import EventSpec, all_specs
from contracts.schemas import (
    LOCAL_DEFS_PREFIX,
    envelope_schema,
    event_schema,
    merge_defs,
    payload_schema,
    rewrite_refs,
)

EVENTS_MD = "events.md"
ASYNCAPI_YAML = "asyncapi.yaml"
GENERATE_COMMAND = "./scripts/uv run ecom-contracts generate"

COMPONENT_SCHEMAS_PREFIX = "#/components/schemas/"
KAFKA_BINDING_VERSION = "0.5.0"

SERVERS: dict[str, dict[str, str]] = {
    "production": {
        "host": "kafka:9092",
        "protocol": "kafka",
        "description": "Apache Kafka (KRaft) under docker compose; Strimzi on Kubernetes.",
    },
    "embedded": {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "description": "The in-memory Kafka-protocol broker (Tansu) that `ecom dev` and the tests spawn.",
    },
}

DLQ_HEADERS: tuple[tuple[str, str], ...] = (
    ("error", "The error message of the last attempt"),
    ("error_type", "The exception type of the last attempt"),
    ("original_topic", "The topic the event was read from"),
    ("original_partition", "Its partition, as a decimal number"),
    ("original_offset", "Its offset in that partition, as a decimal number"),
    ("attempts", "How many times the handler was tried, as a decimal number"),
    ("consumer", "The consumer (and consumer group) that gave up on it"),
    ("event_type", "The CloudEvents type, or `malformed` when the message was not a CloudEvent"),
    ("failed_at", "When it was dead-lettered, ISO 8601 UTC"),
)

# A complete event, shown in docs/events.md; a test validates it against the contract.
EXAMPLE_EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "01936a3e-5c1b-7c4e-9a2f-3b8d6e1f0a47",
    "source": "/customer-service",
    "type": "ecom.customer.created.v1",
    "subject": "9b1f3c2e-4d5a-4e6f-8a7b-0c1d2e3f4a5b",
    "time": "2025-01-15T09:30:00Z",
    "datacontenttype": "application/json",
    "data": {"customer_id": "9b1f3c2e-4d5a-4e6f-8a7b-0c1d2e3f4a5b", "country": "DE"},
    "sequence": 1,
    "correlationid": "01936a3e-5b90-7d21-8c3e-6f4a2b1d9e80",
}


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _topic_order() -> list[str]:
    """Declared topics first, in their declared order, then any other topic an event uses."""
    used = {spec.topic for spec in all_specs()}
    return [*topics.ALL_TOPICS, *sorted(used - set(topics.ALL_TOPICS))]


def _specs_by_topic() -> dict[str, list[EventSpec]]:
    grouped: dict[str, list[EventSpec]] = {topic: [] for topic in _topic_order()}
    for spec in all_specs():
        grouped[spec.topic].append(spec)
    return grouped


def _split_key(description: str) -> tuple[str, str]:
    """TOPIC_DESCRIPTIONS end with 'Key: <what>.'; split that off."""
    text, marker, key = description.partition("Key:")
    if not marker:
        return description.strip(), "aggregate id"
    return text.strip(), key.strip().rstrip(".")


def _topic_text(topic: str) -> tuple[str, str]:
    return _split_key(topics.TOPIC_DESCRIPTIONS.get(topic, ""))


# ---------------------------------------------------------------------------------------------
# docs/events.md


def _md_cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|").strip()


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type_label(schema: dict[str, Any]) -> str:
    """A short human-readable type: `string (date-time)`, `array of OrderLine`, `integer | null`."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return " | ".join(_type_label(option) for option in schema[combinator])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type_label(schema["allOf"][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items")
        return f"array of {_type_label(items)}" if isinstance(items, dict) else "array"
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, dict) and values:
            return f"map of string to {_type_label(values)}"
        return "object"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    return str(kind) if kind else "any"


_CONSTRAINTS = (
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("pattern", "pattern"),
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
    ("minItems", "min items"),
    ("maxItems", "max items"),
)


def _constraints(schema: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for part in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        for key, label in _CONSTRAINTS:
            if key in part:
                value = part[key]
                shown = f"`{value}`" if key == "pattern" else json.dumps(value)
                found.append(f"{label} {shown}")
    return found


def _field_description(schema: dict[str, Any]) -> str:
    parts = [schema.get("description", "").strip().rstrip(".")]
    default = schema.get("default")
    if default is not None:
        parts.append(f"default `{json.dumps(default)}`")
    parts.extend(_constraints(schema))
    return "; ".join(part for part in parts if part)


def _field_table(schema: dict[str, Any]) -> list[str]:
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties:
        return ["_No fields._"]
    required = set(schema.get("required", []))
    lines = ["| Field | Type | Required | Description |", "| --- | --- | --- | --- |"]
    for name, field in properties.items():
        lines.append(
            f"| `{name}` | `{_md_cell(_type_label(field))}` | {'yes' if name in required else 'no'} "
            f"| {_md_cell(_field_description(field))} |"
        )
    return lines


def _nested_defs(defs: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, schema in defs.items():
        lines.append("")
        if "properties" in schema:
            lines.append(f"`{name}`:")
            lines.append("")
            lines.extend(_field_table(schema))
        else:
            description = schema.get("description", "").strip()
            suffix = f" — {description}" if description else ""
            lines.append(f"`{name}`: `{_md_cell(_type_label(schema))}`{suffix}")
    return lines


def _event_section(spec: EventSpec) -> list[str]:
    schema = payload_schema(spec)
    defs: dict[str, Any] = schema.pop("$defs", {})
    model = spec.data_model
    lines = [
        f"#### `{spec.type}`",
        "",
        spec.description,
        "",
        f"Producer: `{spec.producer}` · Payload model: `{model.__module__}.{model.__qualname__}`",
        "",
    ]
    if "$ref" in schema and "properties" not in schema:
        # A self-referencing model: pydantic puts the model itself under $defs.
        schema = defs.pop(_ref_name(schema["$ref"]), schema)
    lines.extend(_field_table(schema))
    lines.extend(_nested_defs(defs))
    lines.append("")
    return lines


def render_events_md() -> str:
    """The text of docs/events.md."""
    grouped = _specs_by_topic()
    example = json.dumps(EXAMPLE_EVENT, indent=2)
    lines = [
        f"<!-- Generated from libs/contracts by `{GENERATE_COMMAND}`. Do not edit by hand. -->",
        "",
        "# Events",
        "",
        "Services share data only through these events and documented HTTP APIs. Every event type,",
        "its topic and the schema of its payload are defined once, in `libs/contracts`; this page and",
        f"[`{ASYNCAPI_YAML}`]({ASYNCAPI_YAML}) (AsyncAPI 3.0) are generated from there, and services'",
        "contract tests validate every event they emit against it (`contracts.schemas.validate_event`).",
        "",
        "Events carry ids and business facts, never clear-text PII (email, phone, address, birthday,",
        "name): a consumer that needs PII asks customer-service's API with its own token.",
        "",
        "| Topic | Key | Event types |",
        "| --- | --- | --- |",
    ]
    for topic, specs in grouped.items():
        _, key = _topic_text(topic)
        types = ", ".join(f"`{spec.type}`" for spec in specs) or "—"
        lines.append(f"| `{topic}` | {_md_cell(key)} | {types} |")
    lines += [
        "",
        "## Envelope",
        "",
        "Every event is a [CloudEvents 1.0](https://github.com/cloudevents/spec) event in structured",
        "JSON mode: the Kafka message value is the whole JSON object, the Kafka key is `subject` (the",
        "aggregate id), so the events of one entity stay in order on one partition. Attributes that are",
        "not set are left out.",
        "",
        *_field_table(envelope_schema()),
        "",
        "```json",
        example,
        "```",
        "",
        "Delivery is at least once: a consumer records each event `id` it handled (the inbox) and skips",
        "duplicates, and can use `sequence` to ignore an update older than what it already has. A change",
        "to an event that old consumers cannot read gets a new type version (`.v2`).",
        "",
        "## Dead-letter topics",
        "",
        f"Every topic has a dead-letter topic `<topic>{topics.DLQ_SUFFIX}`. A consumer retries a",
        "failing event with backoff; when it gives up it publishes the original message (same key and",
        "value) to the dead-letter topic and moves on. The message gets these Kafka headers (UTF-8 text):",
        "",
        "| Header | Meaning |",
        "| --- | --- |",
        *(f"| `{name}` | {meaning} |" for name, meaning in DLQ_HEADERS),
        "",
        "Replaying a dead-letter topic (an `ecom` CLI command) publishes its events back to",
        "`original_topic`; the inbox makes a replay of an already handled event harmless.",
        "",
        "## Topics",
        "",
    ]
    for topic, specs in grouped.items():
        text, key = _topic_text(topic)
        lines += [
            f"### `{topic}`",
            "",
            text or "_No description._",
            "",
            f"Key: {key}. Dead letters: `{topics.dlq_topic(topic)}`.",
            "",
        ]
        if not specs:
            lines += ["_No event types yet._", ""]
        for spec in specs:
            lines += _event_section(spec)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# docs/asyncapi.yaml


def _component_name(spec: EventSpec) -> str:
    return spec.data_model.__name__


def _channel_id(topic: str) -> str:
    return topic


def _operation_id(producer: str, topic: str) -> str:
    return f"{producer}.send.{topic}"


def _document_version() -> str:
    try:
        return metadata.version("contracts")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _components_schemas() -> dict[str, Any]:
    """Envelope, each full event (by type), each payload model and its nested models, one namespace."""
    envelope = envelope_schema()
    envelope.pop("$schema", None)
    defs: dict[str, Any] = {"CloudEvent": envelope}
    events: dict[str, Any] = {}
    for spec in all_specs():
        payload = payload_schema(spec)
        nested: dict[str, Any] = payload.pop("$defs", {})
        if set(payload) == {"$ref"}:
            data_ref = payload["$ref"]
        else:
            nested = merge_defs(nested, {_component_name(spec): payload})
            data_ref = LOCAL_DEFS_PREFIX + _component_name(spec)
        defs = merge_defs(defs, nested)

        event = event_schema(spec)
        event.pop("$schema", None)
        event.pop("$defs", None)
        event["properties"]["data"] = {"$ref": data_ref}
        events[spec.type] = event
    schemas: dict[str, Any] = rewrite_refs(
        merge_defs(defs, events), LOCAL_DEFS_PREFIX, COMPONENT_SCHEMAS_PREFIX
    )
    return schemas


def _dlq_headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Kafka headers a consumer adds when it dead-letters an event.",
        "properties": {name: {"type": "string", "description": meaning} for name, meaning in DLQ_HEADERS},
        "required": [name for name, _ in DLQ_HEADERS],
    }


def _kafka_key_binding(description: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "description": description},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document as plain data."""
    grouped = _specs_by_topic()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    for topic, specs in grouped.items():
        text, key = _topic_text(topic)
        channel_id = _channel_id(topic)
        channels[channel_id] = {
            "address": topic,
            "title": topic,
            "description": f"{text} Kafka key: {key}.".strip(),
            "messages": {spec.type: {"$ref": f"#/components/messages/{spec.type}"} for spec in specs},
        }
        dlq = topics.dlq_topic(topic)
        channels[_channel_id(dlq)] = {
            "address": dlq,
            "title": dlq,
            "description": f"Dead letters of {topic}: the original messages, with error headers.",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        }
        for spec in specs:
            messages[spec.type] = {
                "name": spec.type,
                "title": _component_name(spec),
                "summary": spec.description,
                "contentType": "application/json",
                "payload": {"$ref": f"{COMPONENT_SCHEMAS_PREFIX}{spec.type}"},
                "bindings": _kafka_key_binding(f"The aggregate id ({key}); equals the event's subject"),
            }
        producers = sorted({spec.producer for spec in specs})
        for producer in producers:
            operations[_operation_id(producer, topic)] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "title": f"{producer} publishes to {topic}",
                "messages": [
                    {"$ref": f"#/channels/{channel_id}/messages/{spec.type}"}
                    for spec in specs
                    if spec.producer == producer
                ],
            }

    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "An event a consumer gave up on, with the reason in its headers.",
        "contentType": "application/json",
        "headers": {"$ref": f"{COMPONENT_SCHEMAS_PREFIX}DeadLetterHeaders"},
        "payload": {"$ref": f"{COMPONENT_SCHEMAS_PREFIX}CloudEvent"},
        "bindings": _kafka_key_binding("The original message's key"),
    }
    schemas = _components_schemas()
    schemas = merge_defs(schemas, {"DeadLetterHeaders": _dlq_headers_schema()})

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Ecom Data Platform events",
            "version": _document_version(),
            "description": (
                "CloudEvents 1.0 (structured JSON mode) on Kafka topics keyed by aggregate id.\n"
                f"Generated from libs/contracts by `{GENERATE_COMMAND}`; see docs/{EVENTS_MD}.\n"
            ),
        },
        "defaultContentType": "application/json",
        "servers": SERVERS,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors/aliases, literal blocks for multi-line strings."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_asyncapi_yaml() -> str:
    """The text of docs/asyncapi.yaml."""
    body = yaml.dump(
        asyncapi_document(),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=110,
    )
    return f"# Generated from libs/contracts by `{GENERATE_COMMAND}`. Do not edit by hand.\n{body}"


# ---------------------------------------------------------------------------------------------
# Files and CLI


def generated_files() -> dict[str, str]:
    """File name (inside the docs folder) -> its generated text."""
    return {EVENTS_MD: render_events_md(), ASYNCAPI_YAML: render_asyncapi_yaml()}


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) whose pyproject.toml is a uv workspace."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError:
            continue
        if "workspace" in config.get("tool", {}).get("uv", {}):
            return folder
    return here


def default_docs_dir() -> Path:
    return find_repo_root() / "docs"


def write_docs(out_dir: Path) -> list[Path]:
    """Write the generated files into `out_dir`; returns the ones whose content changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for name, text in generated_files().items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
            changed.append(path)
    return changed


def stale_files(out_dir: Path) -> list[Path]:
    """The generated files in `out_dir` that are missing or differ from what would be generated."""
    stale: list[Path] = []
    for name, text in generated_files().items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """`ecom-contracts generate|check [--out DIR]`."""
    parser = argparse.ArgumentParser(
        prog="ecom-contracts", description="Generate the event docs (events.md, asyncapi.yaml)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("generate", "write docs/events.md and docs/asyncapi.yaml"),
        ("check", "exit 1 if the generated docs are missing or stale"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--out",
            type=Path,
            default=None,
            help="docs folder (default: docs/ at the root of the uv workspace)",
        )
    args = parser.parse_args(argv)
    out_dir: Path = args.out if args.out is not None else default_docs_dir()

    if args.command == "generate":
        changed = write_docs(out_dir)
        for path in changed:
            print(f"wrote {_shown(path)}")
        if not changed:
            print(f"{_shown(out_dir)}: up to date")
        return 0

    stale = stale_files(out_dir)
    if stale:
        for path in stale:
            print(f"stale: {_shown(path)}", file=sys.stderr)
        print(f"run `{GENERATE_COMMAND}` to update them", file=sys.stderr)
        return 1
    print(f"{_shown(out_dir)}: up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
