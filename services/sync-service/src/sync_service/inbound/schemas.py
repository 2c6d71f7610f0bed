"""API models of inbound deliveries."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts.catalog.inbound import InboundKind
from servicekit.bounds import PastDatetime, SaneDate
from sync_service.common import utc_when_naive


class InboundLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(gt=0, le=1_000_000)


def _distinct_skus(lines: list[InboundLineIn] | None) -> list[InboundLineIn] | None:
    seen: set[str] = set()
    for line in lines or ():
        if line.sku in seen:
            raise ValueError(f"SKU {line.sku} is on two lines; give it once with the total quantity")
        seen.add(line.sku)
    return lines


class InboundCreate(BaseModel):
    """A purchase order or an advance shipping notice. The supplier's reference makes it idempotent: the
    same delivery sent again is answered with the first one."""

    model_config = ConfigDict(extra="forbid")

    supplier: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,49}$", description="The supplier's code")
    supplier_reference: str = Field(
        min_length=1, max_length=100, pattern=r"^[\w./-]+$", description="The supplier's PO or notice number"
    )
    kind: InboundKind = "advance_shipping_notice"
    location_id: str = Field(min_length=1, max_length=36, description="product-service's location id")
    expected_date: SaneDate
    lines: Annotated[list[InboundLineIn], Field(min_length=1, max_length=500), AfterValidator(_distinct_skus)]


class ReceiptCreate(BaseModel):
    """What arrived; without `lines`, everything announced."""

    model_config = ConfigDict(extra="forbid")

    lines: Annotated[
        list[InboundLineIn] | None, Field(min_length=1, max_length=500), AfterValidator(_distinct_skus)
    ] = None
    received_at: Annotated[PastDatetime, AfterValidator(utc_when_naive)] | None = Field(
        default=None, description="When it arrived (default now); without an offset, UTC"
    )


class InboundLineRead(BaseModel):
    sku: str
    quantity: int


class InboundRead(BaseModel):
    id: str
    supplier: str
    supplier_reference: str
    kind: InboundKind
    location_id: str
    expected_date: date
    lines: list[InboundLineRead]
    status: str = Field(description="announced or received")
    received_lines: list[InboundLineRead] | None
    created_at: datetime
    received_at: datetime | None
