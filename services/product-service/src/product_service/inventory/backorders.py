"""Why an order line is backordered: the caller of an order learns it from the backorder event and from
`GET /v1/inventory/reservations?order_id=`, never only from a silent lack of stock."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.catalog.inventory import BackorderReason
from product_service.catalog import repository as catalog_repository
from product_service.inventory.models import Location, Reservation


async def reasons(session: AsyncSession, reservations: Sequence[Reservation]) -> dict[str, BackorderReason]:
    """The reason of each backordered reservation, by reservation id: the SKU is not in the catalog,
    the location it names does not exist, or else there was not enough stock."""
    backordered = [r for r in reservations if r.status == "backordered"]
    if not backordered:
        return {}
    skus = await catalog_repository.existing_skus(session, sorted({r.sku for r in backordered}))
    named = sorted({r.location_id for r in backordered if r.location_id is not None})
    locations: set[str] = set()
    if named:
        result = await session.execute(select(col(Location.id)).where(col(Location.id).in_(named)))
        locations = set(result.scalars().all())
    found: dict[str, BackorderReason] = {}
    for reservation in backordered:
        if reservation.sku not in skus:
            found[reservation.id] = "unknown_sku"
        elif reservation.location_id is not None and reservation.location_id not in locations:
            found[reservation.id] = "unknown_location"
        else:
            found[reservation.id] = "insufficient_stock"
    return found
