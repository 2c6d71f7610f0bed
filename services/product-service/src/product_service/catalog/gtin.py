"""GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) check-digit validation."""

from __future__ import annotations

GTIN_LENGTHS = (8, 12, 13, 14)


def check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of the digits before it (weights 3, 1, 3, … from the right)."""
    total = sum(int(digit) * (3 if position % 2 == 0 else 1) for position, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(value: str) -> bool:
    """True when `value` is 8, 12, 13 or 14 digits and its last digit is the right check digit."""
    if len(value) not in GTIN_LENGTHS or not value.isdigit():
        return False
    return check_digit(value[:-1]) == int(value[-1])
