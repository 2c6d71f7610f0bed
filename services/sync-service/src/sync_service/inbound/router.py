"""Inbound delivery routes: announce (idempotent by the supplier's reference), receive, read, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.pagination import Page, PageDep, cursor_value, make_page
from sync_service.common import InboundCaller, ReadCaller
from sync_service.inbound import service
from sync_service.inbound.models import InboundDelivery
from sync_service.inbound.schemas import InboundCreate, InboundRead, ReceiptCreate

router = APIRouter(prefix="/v1/inbound", tags=["inbound deliveries"])


async def get_delivery_or_404(inbound_id: str, session: SessionDep) -> InboundDelivery:
    return await service.get(session, inbound_id=inbound_id)


DeliveryDep = Annotated[InboundDelivery, Depends(get_delivery_or_404)]


def _read(delivery: InboundDelivery) -> InboundRead:
    return InboundRead.model_validate(delivery.model_dump())


@router.post(
    "",
    status_code=201,
    response_model=InboundRead,
    responses={
        **problem_responses(401, 403, 409, 422),
        200: {"model": InboundRead, "description": "Already announced"},
    },
)
async def announce_inbound(body: InboundCreate, session: SessionDep, _: InboundCaller) -> JSONResponse:
    """Announce a supplier's delivery (201); the same supplier reference and content again answers 200."""
    delivery, created = await service.announce(session, body=body)
    headers = {"Location": f"/v1/inbound/{delivery.id}"} if created else {"Idempotent-Replayed": "true"}
    return JSONResponse(
        _read(delivery).model_dump(mode="json"), status_code=201 if created else 200, headers=headers
    )


@router.get("", response_model=Page[InboundRead], responses=problem_responses(400, 401, 403))
async def list_inbound(
    session: SessionDep,
    page: PageDep,
    _: ReadCaller,
    supplier: Annotated[str | None, Query(max_length=50)] = None,
) -> Page[InboundRead]:
    """Inbound deliveries, oldest first, optionally of one supplier."""
    after = cursor_value(page.cursor, "id", str)
    rows = await service.page(session, after_id=after, limit=page.limit, supplier=supplier)
    result = make_page(rows, page.limit, lambda d: {"id": d.id})
    return Page[InboundRead](items=[_read(d) for d in result.items], next_cursor=result.next_cursor)


@router.get("/{inbound_id}", response_model=InboundRead, responses=problem_responses(401, 403, 404))
async def read_inbound(delivery: DeliveryDep, _: ReadCaller) -> InboundRead:
    """One inbound delivery."""
    return _read(delivery)


@router.post(
    "/{inbound_id}/receipt", response_model=InboundRead, responses=problem_responses(401, 403, 404, 409, 422)
)
async def receive_inbound(
    delivery: DeliveryDep, body: ReceiptCreate, session: SessionDep, _: InboundCaller
) -> InboundRead:
    """The delivery arrived (all announced lines, or the `lines` given): product-service adds the stock."""
    return _read(await service.receive(session, delivery=delivery, body=body))
