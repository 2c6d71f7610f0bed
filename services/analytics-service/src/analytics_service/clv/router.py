"""Customer lifetime value route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from analytics_service.clv import service
from analytics_service.clv.schemas import CustomerValueRead
from analytics_service.http import ReadCaller
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1/clv", tags=["customer value"])


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerValueRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def customer_value(
    customer_id: Annotated[str, Path(min_length=1, max_length=64)], session: SessionDep, _: ReadCaller
) -> CustomerValueRead:
    """A customer's historical value and predicted spend over the CLV horizon (BG/NBD + Gamma-Gamma)."""
    return await service.customer_value(session, customer_id=customer_id)
