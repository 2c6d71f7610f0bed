"""The movement ledger and the stock event: every change of stock writes one ledger row per location and
one ecom.stock.changed.v1 event, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import build_event
from contracts.catalog.inventory import LocationStock as EventLocationStock
from contracts.catalog.inventory import MovementKind, StockChanged
from product_service.common import utc_now
from product_service.inventory import repository
from product_service.inventory.models import StockMovement
from servicekit.errors import Conflict
from servicekit.events import outbox


class InsufficientStock(Conflict):
    title = "Insufficient Stock"


def record(
    session: AsyncSession,
    *,
    sku: str,
    location_id: str,
    kind: str,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    reference: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> None:
    """Append one ledger row."""
    session.add(
        StockMovement(
            sku=sku,
            location_id=location_id,
            kind=kind,
            on_hand_delta=on_hand_delta,
            reserved_delta=reserved_delta,
            reference=reference,
            reason=reason,
            actor=actor,
            created_at=utc_now(),
        )
    )


async def emit_stock_changed(
    session: AsyncSession,
    *,
    sku: str,
    location_ids: Sequence[str],
    movement: MovementKind,
    reference: str | None,
) -> None:
    """Publish the SKU's stock at the locations that changed, as this transaction sees it now."""
    await session.flush()
    touched = set(location_ids)
    rows = [row for row in await repository.stock_rows(session, sku) if row.location_id in touched]
    event = StockChanged(
        sku=sku,
        movement=movement,
        reference=reference,
        locations=[
            EventLocationStock(
                location_id=row.location_id,
                location_code=await repository.location_code(session, row.location_id),
                on_hand=row.on_hand,
                reserved=row.reserved,
                available=row.on_hand - row.reserved,
            )
            for row in rows
        ],
        total_available=await repository.total_available(session, sku),
    )
    await outbox.add(session, build_event("ecom.stock.changed.v1", event, subject=sku))
