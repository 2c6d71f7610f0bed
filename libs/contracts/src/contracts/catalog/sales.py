"""Events on ecom.sales.v1, produced by sync-service from stores' end-of-day sales files. Key: the POS
channel's id. customer-service turns each receipt into a POS order (idempotently, by the order number
`POS-<channel code>-<receipt id>`), whose ecom.order.placed.v1 takes the stock out in product-service."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.registry import EventData, register


class ReceiptLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int = Field(ge=1, description="The line number on the receipt")
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0, description="Price per unit paid, in the channel's currency")


@register(
    "ecom.sale.recorded.v1",
    topic=topics.SALES,
    producer="sync-service",
    description=(
        "A store's till receipt from an end-of-day sales file was recorded (once per channel and receipt "
        "id); customer-service places it as a POS order."
    ),
)
class SaleRecorded(EventData):
    channel_id: str
    channel_code: str
    receipt_id: str
    store: str = Field(description="The store's location id (product-service), where the stock leaves")
    sold_at: datetime
    currency: str = Field(min_length=3, max_length=3)
    lines: list[ReceiptLine] = Field(min_length=1)
    loyalty_id: str | None = Field(
        default=None, description="The shopper's loyalty card id; the order goes to that customer"
    )
