"""Hostile requests for every operation of an OpenAPI document: a bounded, seeded fuzz that a service's
tests send through its app, asserting that no answer is a 5xx.

Each request changes one thing from an empty-ish baseline: a path parameter, a query parameter, one
property of a JSON body, or the whole body, to a value known to break naive code (NaN and huge numbers,
dates at the edge of the calendar, NUL bytes, very long strings, deep nesting, wrong types)."""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

HOSTILE_STRINGS = [
    "",
    " ",
    "x" * 5000,
    "\x00",
    "a\x00b",
    "../../../etc/passwd",
    "%",
    "' OR 1=1 --",
    "☃\U0001f600",
    "NaN",
    "Infinity",
    "1e400",
    "-1",
    "99999999999999999999999999",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2026-13-45",
    "XX",
    "XXY",
    "a:1e400",
    "a:1e300",
    "a:NaN",
]
HOSTILE_JSON: list[Any] = [
    *HOSTILE_STRINGS,
    # lone surrogates: valid JSON (json.dumps escapes them), no Unicode text; not in HOSTILE_STRINGS,
    # which also go into URLs (a URL cannot carry them)
    "\ud800",
    "x\udfffy",
    {"\ud800": 1},
    {"k": "\udfff"},
    None,
    True,
    -1,
    0,
    2**63,
    10**25,
    -(10**25),
    1.5e308,
    1e-320,
    [],
    {},
    [None] * 3,
    {"": None},
    {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}},
]
RAW_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"x"',
    b"{",
    b"{}" * 3,
    b'{"a": NaN}',
    b'{"a": 1e400}',
    b"[" * 3000 + b"]" * 3000,
]


@dataclass
class HostileRequest:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    content: bytes | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": "application/json"} if self.content is not None else {}


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 10:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document.get("components", {}).get("schemas", {}).get(name, {})
        seen += 1
    return schema


def _json_body_schema(operation: dict[str, Any], document: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return _resolve(content["application/json"].get("schema", {}), document)


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", quote(value, safe=""), path)


def hostile_requests(
    document: dict[str, Any],
    *,
    bases: dict[tuple[str, str], tuple[str, dict[str, Any]]] | None = None,
    per_operation: int | None = None,
    seed: int = 8,
) -> Iterator[HostileRequest]:
    """Up to `per_operation` hostile requests for each operation, chosen with a fixed seed (default 12, or
    the HOSTILE_PER_OPERATION environment variable for a longer run by hand).

    `bases` maps (METHOD, path template) to (a concrete path, a valid body): hostile values then replace
    one property of that body at a time, so they reach the handler instead of stopping at validation."""
    rng = random.Random(seed)
    bases = bases or {}
    if per_operation is None:
        per_operation = int(os.environ.get("HOSTILE_PER_OPERATION", "12"))
    for path, item in sorted(document.get("paths", {}).items()):
        for method, operation in sorted(item.items()):
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            candidates: list[HostileRequest] = []
            baseline = _fill(path, "does-not-exist")
            if "{" in path:
                candidates += [
                    HostileRequest(method.upper(), _fill(path, value)) for value in HOSTILE_STRINGS if value
                ]
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                candidates += [
                    HostileRequest(method.upper(), baseline, params={parameter["name"]: value})
                    for value in HOSTILE_STRINGS
                ]
            schema = _json_body_schema(operation, document)
            if schema is not None:
                target, base = bases.get((method.upper(), path), (baseline, {}))
                candidates += [HostileRequest(method.upper(), target, content=raw) for raw in RAW_BODIES]
                for name in schema.get("properties", {}):
                    candidates += [
                        HostileRequest(
                            method.upper(), target, content=json.dumps({**base, name: value}).encode()
                        )
                        for value in HOSTILE_JSON
                    ]
                    if isinstance(base.get(name), list) and base[name] and isinstance(base[name][0], dict):
                        for key in base[name][0]:
                            candidates += [
                                HostileRequest(
                                    method.upper(),
                                    target,
                                    content=json.dumps(
                                        {**base, name: [{**base[name][0], key: value}]}
                                    ).encode(),
                                )
                                for value in HOSTILE_JSON
                            ]
            rng.shuffle(candidates)
            limit = per_operation * (4 if (method.upper(), path) in bases else 1)
            yield from candidates[:limit]
