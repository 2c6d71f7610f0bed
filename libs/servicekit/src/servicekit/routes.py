"""Routes every service exposes besides the probes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from servicekit.auth import CallerDep
from servicekit.errors import problem_responses


class WhoAmI(BaseModel):
    subject: str
    scopes: list[str]
    client_id: str | None = None


def whoami_router(prefix: str = "/v1") -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["auth"])

    @router.get("/whoami", response_model=WhoAmI, responses=problem_responses(401))
    async def whoami(caller: CallerDep) -> WhoAmI:
        """The identity and scopes of the token you sent."""
        return WhoAmI(subject=caller.subject, scopes=sorted(caller.scopes), client_id=caller.client_id)

    return router
