"""Small helpers every domain of sync-service uses: ids, time, scopes, settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Security

from contracts import uuid7
from servicekit.auth import Caller, require
from servicekit.db import as_utc as as_utc
from servicekit.db import utc_now as utc_now
from sync_service.config import Settings

CHANNEL_CODE_PATTERN = r"^[a-z][a-z0-9_\-]{0,49}$"
"""The channel code product-service accepts too."""


DATE_TIME_TEXT = re.compile(r"\s*\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")


def date_time_text(value: Any) -> Any:
    """A partner's moment only as RFC 3339 date-time text: pydantic alone also reads a number as Unix
    seconds (or milliseconds), so a till's 20261128 (YYYYMMDD) became 1970-08-23, and a bare date as its
    midnight."""
    if not isinstance(value, str) or DATE_TIME_TEXT.match(value) is None:
        raise ValueError("must be an RFC 3339 date-time like 2026-11-28T17:02:00Z")
    return value


def utc_when_naive(value: datetime) -> datetime:
    """A partner's moment given without an offset, taken as UTC (one with an offset is kept as sent): what
    leaves in an event always carries its offset, which every consumer compares with aware times."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def new_id() -> str:
    """A time-ordered id (UUIDv7), so ordering by id is ordering by creation."""
    return str(uuid7())


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadCaller = Annotated[Caller, Security(require, scopes=["sync:read"])]
AdminCaller = Annotated[Caller, Security(require, scopes=["sync:admin"])]
ShipmentsCaller = Annotated[Caller, Security(require, scopes=["shipments:write"])]
InboundCaller = Annotated[Caller, Security(require, scopes=["inventory:write"])]
SalesCaller = Annotated[Caller, Security(require, scopes=["orders:write"])]
