"""Top products models."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class TopProduct(BaseModel):
    sku: str
    units: int = Field(description="Units sold in counted orders of the range")
    orders: int = Field(description="Counted orders holding the SKU")
    revenue: float = Field(description="Line revenue, reporting currency, major units")
    views: int = Field(description="Product Viewed events of the range")


class TopProducts(BaseModel):
    start: date
    end: date
    currency: str
    by: str = Field(description="What the list is ordered by: revenue or units")
    skus_sold: int = Field(description="SKUs with at least one unit sold in the range")
    revenue_total: float = Field(description="Line revenue of every SKU of the range")
    items: list[TopProduct]
