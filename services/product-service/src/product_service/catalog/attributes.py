"""Attribute values checked against their family, and completeness per channel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from product_service.catalog.schemas import AttributeDefinition


def definitions_of(raw: list[dict[str, Any]]) -> list[AttributeDefinition]:
    return [AttributeDefinition.model_validate(item) for item in raw]


def attribute_errors(values: dict[str, Any], definitions: list[AttributeDefinition]) -> list[str]:
    """Every reason `values` does not fit the family; empty when they do."""
    by_code = {definition.code: definition for definition in definitions}
    errors: list[str] = []
    for code, value in values.items():
        definition = by_code.get(code)
        if definition is None:
            errors.append(f"{code}: not an attribute of the product's family")
            continue
        problem = _value_error(definition, value)
        if problem:
            errors.append(f"{code}: {problem}")
    return errors


def _is_number(value: Any) -> bool:
    """A real number: not a boolean, not NaN or infinite (which would be stored as null)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def _value_error(definition: AttributeDefinition, value: Any) -> str | None:
    if definition.type == "text":
        if not isinstance(value, str):
            return "expected text"
        if len(value) > 10_000:
            return "text longer than 10000 characters"
    elif definition.type == "number":
        if not _is_number(value):
            return "expected a number"
    elif definition.type == "boolean":
        if not isinstance(value, bool):
            return "expected true or false"
    elif definition.type == "enum":
        if value not in (definition.options or []):
            return f"expected one of {', '.join(definition.options or [])}"
    elif definition.type == "measurement":
        if (
            not isinstance(value, dict)
            or set(value) != {"value", "unit"}
            or not _is_number(value["value"])
            or not isinstance(value["unit"], str)
        ):
            return 'expected {"value": <number>, "unit": <unit>}'
        if value["unit"] not in (definition.units or []):
            return f"unit must be one of {', '.join(definition.units or [])}"
    return None


def is_filled(value: Any) -> bool:
    return value is not None and value != "" and value != []


@dataclass(frozen=True)
class Completeness:
    channel: str
    ratio: float
    missing: list[str]


def completeness(values: dict[str, Any], definitions: list[AttributeDefinition]) -> list[Completeness]:
    """Per channel that any attribute is required on: the share of its required attributes filled."""
    channels = sorted({channel for definition in definitions for channel in definition.required_channels})
    result = []
    for channel in channels:
        required = [d.code for d in definitions if channel in d.required_channels]
        missing = [code for code in required if not is_filled(values.get(code))]
        ratio = round((len(required) - len(missing)) / len(required), 4)
        result.append(Completeness(channel, ratio, missing))
    return result
