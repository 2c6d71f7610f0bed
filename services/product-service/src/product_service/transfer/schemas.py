"""The import/export row format (one row per SKU) and the job views."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from product_service.catalog.gtin import is_valid_gtin
from product_service.catalog.schemas import SKU_PATTERN, AttributeValues, VariantAxes
from servicekit.bounds import LineText, MultilineText, Title

TransferFormat = Literal["csv", "ndjson"]
ImportStatus = Literal["queued", "running", "succeeded", "failed"]
CSV_COLUMNS = [
    "sku",
    "product_id",
    "title",
    "brand",
    "description",
    "category_id",
    "status",
    "gtin",
    "attributes",
    "variant_attributes",
    "media_urls",
]


class ImportRow(BaseModel):
    """One SKU. A new SKU creates a product (or, with product_id, a variant of that product); an existing
    SKU updates its product's given fields and its GTIN. In CSV, attributes are JSON and media_urls are
    separated by |; empty cells mean "not given"."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(pattern=SKU_PATTERN)
    product_id: str | None = Field(default=None, max_length=100)
    title: Title | None = Field(default=None, min_length=1, max_length=300)
    brand: LineText | None = Field(default=None, max_length=200)
    description: MultilineText | None = Field(default=None, max_length=20_000)
    category_id: str | None = Field(default=None, max_length=100)
    status: Literal["draft", "active", "archived"] | None = None
    gtin: str | None = None
    attributes: AttributeValues | None = None
    variant_attributes: VariantAxes | None = None
    media_urls: list[str] | None = Field(default=None, max_length=50)

    @field_validator("gtin")
    @classmethod
    def _valid_gtin(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_gtin(value):
            raise ValueError("not a valid GTIN (8, 12, 13 or 14 digits with a correct check digit)")
        return value

    @field_validator("media_urls")
    @classmethod
    def _urls(cls, value: list[str] | None) -> list[str] | None:
        for url in value or []:
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"{url[:100]!r} is not an http(s) URL")
        return value


class ImportJobRead(BaseModel):
    id: str
    format: str
    status: str = Field(description="queued, running, succeeded or failed")
    rows_processed: int
    rows_created: int
    rows_updated: int
    rows_failed: int
    bytes_total: int
    error: str | None
    actor: str = Field(description="Who started the import (the token's subject)")
    created_at: datetime
    finished_at: datetime | None


class ImportJobPage(BaseModel):
    items: list[ImportJobRead]
    next_cursor: str | None = None


class ImportRowErrorRead(BaseModel):
    row_number: int
    sku: str | None
    message: str


class ImportErrorPage(BaseModel):
    items: list[ImportRowErrorRead]
    next_cursor: str | None = None
