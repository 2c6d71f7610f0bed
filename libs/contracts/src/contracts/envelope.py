"""The CloudEvents 1.0 envelope (structured JSON mode) every Ecom event travels in."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): 48-bit Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def utc_now() -> datetime:
    return datetime.now(UTC)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event with the Ecom extensions `sequence`, `correlationid`, `traceparent`."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = Field(default="1.0", description="CloudEvents version, always 1.0")
    id: str = Field(
        default_factory=lambda: str(uuid7()),
        min_length=1,
        description="UUIDv7, unique per event; consumers deduplicate on it",
    )
    source: str = Field(min_length=1, description="The producing service, e.g. /customer-service")
    type: str = Field(min_length=1, description="e.g. ecom.customer.created.v1")
    subject: str = Field(min_length=1, description="The aggregate id; also the Kafka message key")
    time: datetime = Field(default_factory=utc_now, description="When the fact happened (RFC 3339, UTC)")
    datacontenttype: Literal["application/json"] = Field(
        default="application/json", description="Media type of data, always application/json"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="The payload; its schema depends on type")
    sequence: int | None = Field(default=None, description="Aggregate version, monotonic per subject")
    correlationid: str | None = Field(default=None, description="Shared by the events one request caused")
    traceparent: str | None = Field(default=None, description="W3C Trace Context of the producing request")

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json_bytes(cls, raw: bytes | str) -> CloudEvent:
        """Parse a structured-mode event; raises pydantic.ValidationError when it is not one."""
        return cls.model_validate_json(raw)
