"""Order routes: place (idempotent by order number), change status, read, a customer's history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from customer_service.context import ContextDep
from customer_service.customers import service as customers
from customer_service.customers.router import PageDep
from customer_service.http import OrdersCaller, ReadCaller
from customer_service.orders import service
from customer_service.orders.models import Order
from customer_service.orders.schemas import OrderCreate, OrderRead, StatusChange
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.pagination import Page, cursor_value, make_page

router = APIRouter(prefix="/v1", tags=["orders"])


async def get_order_or_404(order_id: str, session: SessionDep) -> Order:
    return await service.get(session, order_id=order_id)


OrderDep = Annotated[Order, Depends(get_order_or_404)]


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderRead,
    responses={
        **problem_responses(401, 403, 404, 409, 422),
        200: {"model": OrderRead, "description": "Already placed"},
    },
)
async def place_order(
    body: OrderCreate, session: SessionDep, context: ContextDep, _: OrdersCaller
) -> JSONResponse:
    """Place an order (201); the same order number with the same content again answers 200 with it."""
    order, created = await service.place(session, context, body=body)
    view = await service.to_read(session, order)
    headers = {"Location": f"/v1/orders/{order.id}"} if created else {"Idempotent-Replayed": "true"}
    return JSONResponse(view.model_dump(mode="json"), status_code=201 if created else 200, headers=headers)


@router.get("/orders/{order_id}", response_model=OrderRead, responses=problem_responses(401, 403, 404))
async def read_order(order: OrderDep, session: SessionDep, _: ReadCaller) -> OrderRead:
    """One order with its status timeline."""
    return await service.to_read(session, order)


@router.post(
    "/orders/{order_id}/status",
    response_model=OrderRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def change_order_status(
    order: OrderDep, body: StatusChange, session: SessionDep, _: OrdersCaller
) -> OrderRead:
    """Move an order to paid, shipped (carrier and tracking number), delivered, cancelled or refunded."""
    order = await service.change_status(session, order=order, change=body)
    return await service.to_read(session, order)


@router.get(
    "/customers/{customer_id}/orders",
    response_model=Page[OrderRead],
    responses=problem_responses(400, 401, 403, 404),
)
async def customer_orders(
    customer_id: str, session: SessionDep, _: ReadCaller, page: PageDep
) -> Page[OrderRead]:
    """A customer's purchase history (web and in-store), newest first."""
    await customers.get(session, customer_id=customer_id)
    after = cursor_value(page.cursor, "id", str)
    rows = await service.for_customer(session, customer_id=customer_id, after_id=after, limit=page.limit)
    result = make_page(rows, page.limit, lambda o: {"id": o.id})
    return Page[OrderRead](
        items=[await service.to_read(session, o) for o in result.items], next_cursor=result.next_cursor
    )
