"""Route helpers shared by sync-service's domains: scopes and the secret box."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security

from servicekit.auth import Caller, require
from sync_service.secretbox import SecretBox

ReadCaller = Annotated[Caller, Security(require, scopes=["sync:read"])]
AdminCaller = Annotated[Caller, Security(require, scopes=["sync:admin"])]
ShipmentsCaller = Annotated[Caller, Security(require, scopes=["shipments:write"])]
InboundCaller = Annotated[Caller, Security(require, scopes=["inventory:write"])]


def secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


SecretBoxDep = Annotated[SecretBox, Depends(secret_box)]
