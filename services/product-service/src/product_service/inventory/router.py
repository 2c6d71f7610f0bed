"""Inventory routes: locations, movements, reservations, stock views, buffers, low-stock."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from product_service.catalog.schemas import CHANNEL_PATTERN
from product_service.channels.service import require_known
from product_service.common import InventoryCaller, ReadCaller, cursor_id
from product_service.inventory import backorders, repository, reservations, service
from product_service.inventory.models import ChannelBuffer, Location
from product_service.inventory.schemas import (
    BufferRead,
    BufferUpdate,
    LocationCreate,
    LocationRead,
    LowStockItem,
    MovementCreate,
    MovementPage,
    MovementRead,
    ReservationCreate,
    ReservationPage,
    ReservationRead,
    StockRead,
    ThresholdUpdate,
)
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http import idempotency
from servicekit.http.idempotency import IdempotencyKeyDep
from servicekit.http.pagination import Page, PageDep, cursor_key, cursor_value, encode_cursor, make_page

router = APIRouter(prefix="/v1", tags=["inventory"])

ChannelQuery = Annotated[
    str | None, Query(pattern=CHANNEL_PATTERN, description="Net of this channel's buffer")
]


@router.post(
    "/locations",
    response_model=LocationRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_location(body: LocationCreate, session: SessionDep, _: InventoryCaller) -> Location:
    """Add a stock location (warehouse or store)."""
    return await service.create_location(session, body=body)


@router.get("/locations", response_model=Page[LocationRead], responses=problem_responses(400, 401, 403))
async def list_locations(session: SessionDep, _: ReadCaller, page: PageDep) -> Page[LocationRead]:
    """Stock locations by code; cursor pagination."""
    after = cursor_value(page.cursor, "code", str)
    rows = await repository.locations(session, after_code=after, limit=page.limit + 1)
    result = make_page(list(rows), page.limit, lambda location: {"code": location.code})
    items = [LocationRead.model_validate(row, from_attributes=True) for row in result.items]
    return Page[LocationRead](items=items, next_cursor=result.next_cursor)


@router.post(
    "/inventory/movements",
    response_model=StockRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def record_movement(
    body: MovementCreate, session: SessionDep, caller: InventoryCaller, idempotency_key: IdempotencyKeyDep
) -> Any:
    """Record a receipt, sale, return, adjustment or transfer; 409 if available stock would go below zero.
    Send an Idempotency-Key to make a retry (after a timeout, say) return the first answer instead of
    moving the stock twice."""

    async def move() -> StockRead:
        await service.record_movement(session, body=body, actor=caller.subject)
        return await service.stock_of(session, sku=body.sku, channel=None)

    return await idempotency.once(session, f"movements:{caller.subject}", idempotency_key, body, move)


@router.post(
    "/inventory/reservations",
    response_model=ReservationRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def reserve(
    body: ReservationCreate, session: SessionDep, caller: InventoryCaller, idempotency_key: IdempotencyKeyDep
) -> Any:
    """Reserve stock; 409 when not enough is available (net of the channel's safety buffer). Send an
    Idempotency-Key to make a retry return the first answer instead of reserving twice."""

    async def hold() -> ReservationRead:
        reservation = await reservations.reserve_from_api(session, body=body, actor=caller.subject)
        return await reservations.to_read(session, reservation)

    return await idempotency.once(session, f"reservations:{caller.subject}", idempotency_key, body, hold)


@router.get(
    "/inventory/reservations",
    response_model=ReservationPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def reservations_of_order(
    order_id: Annotated[str, Query(min_length=1, max_length=100, description="The order's id")],
    session: SessionDep,
    _: ReadCaller,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> ReservationPage:
    """An order's reservations, one per line (or per location a line was split over); a line that could
    not be reserved is `backordered` with its `backorder_reason`."""
    after = cursor_id(cursor, str)
    rows = await repository.reservations_page(session, order_id=order_id, after_id=after, limit=limit)
    reasons = await backorders.reasons(session, rows[:limit])
    items = [
        (await reservations.to_read(session, row)).model_copy(
            update={"backorder_reason": reasons.get(row.id)}
        )
        for row in rows[:limit]
    ]
    next_cursor = encode_cursor({"id": items[-1].id}) if len(rows) > limit and items else None
    return ReservationPage(items=items, next_cursor=next_cursor)


@router.get(
    "/inventory/reservations/{reservation_id}",
    response_model=ReservationRead,
    responses=problem_responses(401, 403, 404),
)
async def get_reservation(reservation_id: str, session: SessionDep, _: ReadCaller) -> ReservationRead:
    """Read one reservation with its units per location."""
    reservation = await reservations.get_reservation(session, reservation_id=reservation_id)
    return await reservations.to_read(session, reservation)


@router.post(
    "/inventory/reservations/{reservation_id}/release",
    response_model=ReservationRead,
    responses=problem_responses(401, 403, 404, 409),
)
async def release_reservation(
    reservation_id: str, session: SessionDep, caller: InventoryCaller
) -> ReservationRead:
    """Release an active reservation: its units become available again; 409 if it is settled already."""
    reservation = await reservations.settle_from_api(
        session, reservation_id=reservation_id, to="released", actor=caller.subject
    )
    return await reservations.to_read(session, reservation)


@router.post(
    "/inventory/reservations/{reservation_id}/commit",
    response_model=ReservationRead,
    responses=problem_responses(401, 403, 404, 409),
)
async def commit_reservation(
    reservation_id: str, session: SessionDep, caller: InventoryCaller
) -> ReservationRead:
    """Commit an active reservation: its units leave the location (shipped or sold); 409 if it is
    settled already."""
    reservation = await reservations.settle_from_api(
        session, reservation_id=reservation_id, to="committed", actor=caller.subject
    )
    return await reservations.to_read(session, reservation)


@router.get(
    "/inventory/low-stock", response_model=Page[LowStockItem], responses=problem_responses(400, 401, 403)
)
async def low_stock(session: SessionDep, _: ReadCaller, page: PageDep) -> Page[LowStockItem]:
    """Stock rows at or below their low-stock threshold, by SKU and location; cursor pagination."""
    key = cursor_key(page.cursor, ("sku", str), ("location_id", str))
    after = (key[0], key[1]) if key else None
    fetched = await repository.low_stock(session, after=after, limit=page.limit + 1)
    result = make_page(
        list(fetched), page.limit, lambda row: {"sku": row.sku, "location_id": row.location_id}
    )
    items = [
        LowStockItem(
            sku=row.sku,
            location_id=row.location_id,
            available=row.on_hand - row.reserved,
            low_stock_threshold=row.low_stock_threshold,
        )
        for row in result.items
    ]
    return Page[LowStockItem](items=items, next_cursor=result.next_cursor)


@router.put(
    "/inventory/channels/{channel}/buffer",
    response_model=BufferRead,
    responses=problem_responses(401, 403, 422),
)
async def set_buffer(
    channel: Annotated[str, Path(pattern=CHANNEL_PATTERN)],
    body: BufferUpdate,
    session: SessionDep,
    _: InventoryCaller,
) -> ChannelBuffer:
    """Set the units of every SKU held back from a channel."""
    await require_known(session, [channel])
    return await service.set_buffer(session, channel=channel, safety_buffer=body.safety_buffer)


@router.get("/inventory/{sku}", response_model=StockRead, responses=problem_responses(401, 403, 404, 422))
async def stock_of(sku: str, session: SessionDep, _: ReadCaller, channel: ChannelQuery = None) -> StockRead:
    """On-hand, reserved and available stock of a SKU per location and in total."""
    await require_known(session, [channel])
    return await service.stock_of(session, sku=sku, channel=channel)


@router.get(
    "/inventory/{sku}/movements", response_model=MovementPage, responses=problem_responses(400, 401, 403)
)
async def movements(
    sku: str,
    session: SessionDep,
    _: ReadCaller,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> MovementPage:
    """The SKU's movement ledger, oldest first."""
    after = cursor_id(cursor, int)
    rows = await repository.movements(session, sku=sku, after_id=after, limit=limit)
    items = [MovementRead.model_validate(row, from_attributes=True) for row in rows[:limit]]
    next_cursor = encode_cursor({"id": items[-1].id}) if len(rows) > limit and items else None
    return MovementPage(items=items, next_cursor=next_cursor)


@router.put(
    "/inventory/{sku}/locations/{location_id}/threshold",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def set_threshold(
    sku: str, location_id: str, body: ThresholdUpdate, session: SessionDep, _: InventoryCaller
) -> None:
    """Set the low-stock threshold of a SKU at a location."""
    await service.set_threshold(session, sku=sku, location_id=location_id, threshold=body.low_stock_threshold)
