"""Risk flags raised by the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from customer_service.customers import service as customers
from customer_service.customers.router import PageDep
from customer_service.http import ReadCaller
from customer_service.risk import service
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.pagination import Page, cursor_value, make_page

router = APIRouter(prefix="/v1/risk", tags=["risk"])


class RiskFlagRead(BaseModel):
    id: str
    customer_id: str
    order_id: str | None
    rule: str
    reason: str
    created_at: datetime


@router.get("/flags", response_model=Page[RiskFlagRead], responses=problem_responses(400, 401, 403))
async def list_flags(
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    customer_id: str | None = None,
    rule: Annotated[str | None, Query(max_length=50)] = None,
) -> Page[RiskFlagRead]:
    """Risk flags, newest first: order_velocity, country_mismatch, high_first_order,
    many_shipping_addresses, shared_identifier; each with its reason."""
    after = cursor_value(page.cursor, "id", str)
    rows = await service.list_flags(
        session, customer_id=customer_id, rule=rule, after_id=after, limit=page.limit
    )
    result = make_page(rows, page.limit, lambda f: {"id": f.id})
    return Page[RiskFlagRead](
        items=[
            RiskFlagRead(
                id=f.id,
                customer_id=f.customer_id,
                order_id=f.order_id,
                rule=f.rule,
                reason=f.reason,
                created_at=customers.aware(f.created_at),
            )
            for f in result.items
        ],
        next_cursor=result.next_cursor,
    )
