"""Small helpers every domain of sync-service uses: ids, time, scopes, settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Security

from contracts import uuid7
from servicekit.auth import Caller, require
from servicekit.db import as_utc as as_utc
from servicekit.db import utc_now as utc_now
from sync_service.config import Settings

CHANNEL_CODE_PATTERN = r"^[a-z][a-z0-9_\-]{0,49}$"
"""The channel code product-service accepts too."""


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
