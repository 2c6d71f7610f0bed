"""Key management: which keys protect how many customers; re-wrap data keys after a master key
rotation, re-compute blind indexes after a blind-index key rotation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

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
    blind_index_kid: str = Field(description="Id of the current blind-index key (not the key)")
    customers_by_index_kid: dict[str, int] = Field(
        description="Customers per blind-index key their indexes were computed with"
    )


class ReindexStatus(BaseModel):
    blind_index_kid: str
    reindexed: int = Field(description="Customers re-indexed by this call")
    remaining: int = Field(description="Customers still indexed under another key; call again until 0")
    customers_by_index_kid: dict[str, int]


async def _status(session: SessionDep, context: ContextDep, rewrapped: int = 0) -> KeyStatus:
    return KeyStatus(
        current_kid=context.keyring.current_kid,
        configured_kids=list(context.keyring.master_keys),
        data_keys_by_kid=await service.count_by_key(session),
        rewrapped=rewrapped,
        blind_index_kid=context.keyring.blind_kid,
        customers_by_index_kid=await service.count_by_index_key(session),
    )


@router.get("", response_model=KeyStatus, responses=problem_responses(401, 403))
async def key_status(session: SessionDep, context: ContextDep, _: AdminCaller) -> KeyStatus:
    """How many customer data keys each master key wraps, and which blind-index key indexes whom."""
    return await _status(session, context)


@router.post("/rewrap", response_model=KeyStatus, responses=problem_responses(401, 403))
async def rewrap(session: SessionDep, context: ContextDep, _: AdminCaller) -> KeyStatus:
    """Re-wrap every data key under the current (first) master key, after a rotation."""
    done = await service.rewrap_data_keys(session, context)
    return await _status(session, context, rewrapped=done)


@router.post("/reindex", response_model=ReindexStatus, responses=problem_responses(401, 403, 409, 422))
async def reindex(
    session: SessionDep,
    context: ContextDep,
    _: AdminCaller,
    limit: Annotated[int, Query(ge=1, le=50_000, description="Customers to re-index in this call")] = 5_000,
) -> ReindexStatus:
    """Re-compute blind indexes and blocking keys under the current blind-index key, `limit` customers
    per call (each call commits); repeat until `remaining` is 0, then drop the previous key."""
    done = await service.reindex_blind_indexes(session, context, limit=limit)
    return ReindexStatus(
        blind_index_kid=context.keyring.blind_kid,
        reindexed=done,
        remaining=await service.remaining_to_reindex(session, context),
        customers_by_index_kid=await service.count_by_index_key(session),
    )
