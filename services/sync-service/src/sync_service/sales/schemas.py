"""What a row of a sales file holds, and the answer to an upload."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from servicekit.bounds import Amount, PastDatetime, date_time_text
from sync_service.common import utc_when_naive

COLUMNS = ("receipt_id", "line", "sku", "quantity", "price", "store", "time", "loyalty_id")
REQUIRED = ("receipt_id", "line", "sku", "quantity", "price", "store", "time")


class SalesRow(BaseModel):
    """One line of one receipt. `price` is the unit price paid, in the channel's currency."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    receipt_id: str = Field(min_length=1, max_length=100, pattern=r"^[\w./-]+$")
    line: int = Field(ge=1, le=10_000)
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(gt=0, le=100_000)
    price: Amount
    store: str = Field(min_length=1, max_length=36, description="The store's location id")
    time: Annotated[PastDatetime, BeforeValidator(date_time_text), AfterValidator(utc_when_naive)] = Field(
        description="RFC 3339; without an offset, UTC (the event carries it with its offset)"
    )
    loyalty_id: str | None = Field(default=None, min_length=1, max_length=200)


class RowError(BaseModel):
    line: int = Field(description="1-based line of the file")
    receipt_id: str | None
    field: str
    message: str


class SalesReport(BaseModel):
    rows: int = Field(description="Data rows read")
    receipts: int = Field(description="Distinct receipts in the file")
    recorded: int = Field(description="Receipts recorded now (each becomes a POS order)")
    duplicates: int = Field(description="Receipts recorded before with the same content: skipped")
    rejected: int = Field(description="Receipts not recorded because a row of theirs has an error")
    errors: list[RowError] = Field(description="Every problem, by file line")
