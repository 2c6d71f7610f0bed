"""Key management: see which master key wraps how many data keys, re-wrap under the current one."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from customer_service.context import ContextDep
from customer_service.http import AdminCaller
from customer_service.keys import service
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1/admin/keys", tags=["privacy"])


class KeyStatus(BaseModel):
    current_kid: str
    configured_kids: list[str]
    data_keys_by_kid: dict[str, int]
    rewrapped: int = 0


@router.get("", response_model=KeyStatus, responses=problem_responses(401, 403))
async def key_status(session: SessionDep, context: ContextDep, _: AdminCaller) -> KeyStatus:
    """How many customer data keys each master key wraps."""
    return KeyStatus(
        current_kid=context.keyring.current_kid,
        configured_kids=list(context.keyring.master_keys),
        data_keys_by_kid=await service.count_by_key(session),
    )


@router.post("/rewrap", response_model=KeyStatus, responses=problem_responses(401, 403))
async def rewrap(session: SessionDep, context: ContextDep, _: AdminCaller) -> KeyStatus:
    """Re-wrap every data key under the current (first) master key, after a rotation."""
    done = await service.rewrap_data_keys(session, context)
    return KeyStatus(
        current_kid=context.keyring.current_kid,
        configured_kids=list(context.keyring.master_keys),
        data_keys_by_kid=await service.count_by_key(session),
        rewrapped=done,
    )
