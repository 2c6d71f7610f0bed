"""The data quality report."""

from __future__ import annotations

from decimal import Decimal
from typing import Generic, TypeVar

from pydantic import BaseModel, Field


class MissingAttributes(BaseModel):
    product_id: str
    missing: dict[str, list[str]] = Field(description="Per channel, the required attributes not filled")


class GtinIssue(BaseModel):
    sku: str
    gtin: str


class DuplicateGtin(BaseModel):
    gtin: str = Field(description="The GTIN as GTIN-14 (zero-padded)")
    skus: list[str]


class SimilarNames(BaseModel):
    product_ids: list[str]
    titles: list[str]
    similarity: float


class PriceBelowCost(BaseModel):
    sku: str
    currency: str
    channel: str | None
    amount: Decimal
    cost: Decimal


T = TypeVar("T")


class Section(BaseModel, Generic[T]):
    count: int = Field(description="How many issues were found (items holds at most `limit`)")
    items: list[T]


class QualityReport(BaseModel):
    missing_required_attributes: Section[MissingAttributes]
    invalid_gtins: Section[GtinIssue]
    duplicate_gtins: Section[DuplicateGtin]
    near_identical_names: Section[SimilarNames]
    price_below_cost: Section[PriceBelowCost]
    active_without_stock: Section[str]
