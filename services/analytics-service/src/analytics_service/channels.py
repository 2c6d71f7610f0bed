"""Marketing channels (traffic sources): one spelling wherever a channel enters, so what a tracked event,
a spend entry, a filter and a segment rule name is compared alike (`Google`, ` google ` and `google` are
one channel)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

DEFAULT_CHANNEL = "direct"
"""The channel of an event that names none."""


def channel_key(name: str) -> str:
    """A marketing channel as stored and compared: trimmed and lower-cased."""
    return name.strip().lower()


def _filter(value: str | None) -> str | None:
    if value is None:
        return None
    key = channel_key(value)
    if not key:
        raise ValueError("must not be blank")
    return key


ChannelName = Annotated[str, AfterValidator(channel_key)]
"""A channel a request or a stored rule names, read as stored channels are."""
ChannelFilter = Annotated[str | None, AfterValidator(_filter)]
"""A channel filter of a query, read as stored channels are (`Google` finds `google`); blank is refused."""
