"""Carrier-specific shipment statuses normalised to one set.

Lookup order for a status a partner sends: the partner's own overrides (`status_overrides`, exact code),
then the carrier's table below, then the generic table (the normalised names themselves and common
words). Codes are compared case-insensitively, with spaces, dashes and dots read as underscores. A status
found nowhere is refused (422) rather than guessed: the partner's overrides can map it.

docs/sync.md shows these tables; a test checks that it does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, get_args

from contracts.catalog.shipments import ShipmentStatus

STATUSES: Final[tuple[str, ...]] = get_args(ShipmentStatus)

# The order statuses move through; `exception` and `returned` are outside it.
PROGRESS: Final[dict[str, int]] = {
    "label_created": 0,
    "picked_up": 1,
    "in_transit": 2,
    "out_for_delivery": 3,
    "delivered": 4,
}

GENERIC: Final[dict[str, ShipmentStatus]] = {
    **{status: status for status in STATUSES},  # type: ignore[misc]
    "created": "label_created",
    "pre_transit": "label_created",
    "info_received": "label_created",
    "manifested": "label_created",
    "pickup": "picked_up",
    "collected": "picked_up",
    "accepted": "picked_up",
    "transit": "in_transit",
    "departed": "in_transit",
    "arrived": "in_transit",
    "out_for_delivery": "out_for_delivery",
    "with_courier": "out_for_delivery",
    "failure": "exception",
    "failed_attempt": "exception",
    "delivery_failed": "exception",
    "return_to_sender": "returned",
    "returned_to_sender": "returned",
}

# Codes carriers commonly use in their tracking data, keyed by carrier (lowercase).
CARRIERS: Final[dict[str, dict[str, ShipmentStatus]]] = {
    "dhl": {
        "pre_transit": "label_created",
        "transit": "in_transit",
        "delivered": "delivered",
        "failure": "exception",
        "returned": "returned",
        "pu": "picked_up",
        "od": "out_for_delivery",
    },
    "ups": {
        "m": "label_created",
        "mp": "label_created",
        "p": "picked_up",
        "i": "in_transit",
        "o": "out_for_delivery",
        "d": "delivered",
        "x": "exception",
        "rs": "returned",
    },
    "fedex": {
        "oc": "label_created",
        "pu": "picked_up",
        "it": "in_transit",
        "ar": "in_transit",
        "dp": "in_transit",
        "od": "out_for_delivery",
        "dl": "delivered",
        "de": "exception",
        "se": "exception",
        "rs": "returned",
    },
    "usps": {
        "pre_shipment": "label_created",
        "accepted": "picked_up",
        "in_transit": "in_transit",
        "out_for_delivery": "out_for_delivery",
        "delivered": "delivered",
        "alert": "exception",
        "return_to_sender": "returned",
    },
    "dpd": {
        "data_received": "label_created",
        "accepted": "picked_up",
        "at_sending_depot": "in_transit",
        "on_the_road": "in_transit",
        "at_delivery_depot": "in_transit",
        "out_for_delivery": "out_for_delivery",
        "delivered": "delivered",
        "not_delivered": "exception",
        "returned": "returned",
    },
}

_SEPARATORS = re.compile(r"[\s.\-/]+")


def code_key(code: str) -> str:
    """`Out For-Delivery` -> `out_for_delivery`."""
    return _SEPARATORS.sub("_", code.strip().lower())


def normalise(
    carrier: str, carrier_status: str, overrides: Mapping[str, str] | None = None
) -> ShipmentStatus | None:
    """The normalised status of `carrier_status`, or None when no table knows it."""
    key = code_key(carrier_status)
    for table in (
        {code_key(code): status for code, status in (overrides or {}).items()},
        CARRIERS.get(code_key(carrier), {}),
        GENERIC,
    ):
        found = table.get(key)
        if found is not None:
            return found  # type: ignore[return-value]
    return None
