"""How PII looks to a caller without `customers:pii`: enough to recognise, not enough to use."""

from __future__ import annotations

from typing import Any

from customer_service.customers.normalize import EXTENSION

MASK = "***"


def email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}{MASK}@{domain}"


def phone(number: str) -> str:
    line, extension, digits = number.partition(EXTENSION)
    masked = f"{line[:3]}{'*' * max(0, len(line) - 5)}{line[-2:]}"
    return f"{masked}{extension}{'*' * len(digits)}" if extension else masked


def address(value: dict[str, Any]) -> dict[str, Any]:
    postcode = value.get("postcode")
    return {
        **value,
        "line1": MASK,
        "line2": MASK if value.get("line2") else None,
        "postcode": f"{postcode[:2]}{MASK}" if postcode else None,
    }


def birthday(value: str | None) -> str | None:
    return "****-**-**" if value else None
