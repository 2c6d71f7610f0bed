"""Scopes of analytics-service's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Security

from servicekit.auth import Caller, require

TrackCaller = Annotated[Caller, Security(require, scopes=["events:write"])]
ReadCaller = Annotated[Caller, Security(require, scopes=["analytics:read"])]
AdminCaller = Annotated[Caller, Security(require, scopes=["admin"])]
WriteCaller = Annotated[Caller, Security(require, scopes=["analytics:write"])]
