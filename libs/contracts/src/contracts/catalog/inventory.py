"""Events on ecom.inventory.v1, produced by product-service. Key: SKU."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.registry import EventData, register

BackorderReason = Literal["insufficient_stock", "unknown_sku", "unknown_location"]
MovementKind = Literal["receipt", "sale", "return", "adjustment", "transfer", "reservation", "release"]


class LocationStock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location_id: str
    location_code: str | None = Field(
        default=None, description="The location's code (added in 2026-11; absent from older events)"
    )
    on_hand: int
    reserved: int
    available: int = Field(description="on_hand - reserved, never below zero")


@register(
    "ecom.stock.changed.v1",
    topic=topics.INVENTORY,
    producer="product-service",
    description="A SKU's stock changed at one or more locations; carries available stock per location.",
)
class StockChanged(EventData):
    sku: str
    movement: MovementKind = Field(description="The ledger movement that caused the change")
    reference: str | None = Field(default=None, description="Order id or other business reference")
    locations: list[LocationStock] = Field(description="Stock of the SKU at the locations that changed")
    total_available: int = Field(description="Available stock of the SKU over all locations")


@register(
    "ecom.stock.backordered.v1",
    topic=topics.INVENTORY,
    producer="product-service",
    description=(
        "An order line could not be reserved (no location had enough available stock, or the SKU or "
        "the location it names does not exist; `reason` says which); nothing was reserved for it and "
        "stock never went below zero."
    ),
)
class StockBackordered(EventData):
    sku: str
    order_id: str
    quantity: int = Field(gt=0, description="The quantity that could not be reserved")
    location_id: str | None = Field(default=None, description="The location the order asked for")
    reason: BackorderReason = Field(
        default="insufficient_stock",
        description="Why: no location had enough stock, the SKU is not in the catalog, or the location "
        "the order asked for does not exist",
    )
