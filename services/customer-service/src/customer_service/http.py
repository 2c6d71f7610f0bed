"""Route helpers shared by the domains: scopes, idempotent replays without PII at rest."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request, Security

from servicekit.auth import Caller, require
from servicekit.logging import request_id_var

ReadCaller = Annotated[Caller, Security(require, scopes=["customers:read"])]
WriteCaller = Annotated[Caller, Security(require, scopes=["customers:write"])]
OrdersCaller = Annotated[Caller, Security(require, scopes=["orders:write"])]
PrivacyCaller = Annotated[Caller, Security(require, scopes=["privacy:admin"])]
AdminCaller = Annotated[Caller, Security(require, scopes=["admin"])]

PII_SCOPE = "customers:pii"


def sees_pii(caller: Caller) -> bool:
    return caller.has(PII_SCOPE)


def route_of(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return f"{request.method} {path or request.url.path}"


def current_request_id() -> str | None:
    return request_id_var.get()
