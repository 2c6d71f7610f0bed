"""API models of the channel facts: what sales channels show of the catalogue, page by page."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from contracts.catalog.products import ProductDetails
from product_service.catalog.schemas import ProductStatus


class PriceFact(BaseModel):
    sku: str
    currency: str
    channel: str | None = Field(description="The channel, or null for every channel")
    amount: Decimal
    effective_from: datetime


class StockFact(BaseModel):
    sku: str
    location_id: str
    location_code: str | None
    available: int = Field(description="on_hand - reserved, never below zero")
    updated_at: datetime = Field(description="When this stock row last changed")


class ProductFacts(BaseModel):
    product_id: str
    status: ProductStatus
    version: int = Field(description="The product's version (its ETag), as its events carry it")
    details: ProductDetails = Field(description="The product as its events describe it")
    prices: list[PriceFact] = Field(description="Prices of its SKUs in effect now, per currency and channel")
    stock: list[StockFact] = Field(description="Stock of its SKUs per location")


class ChannelFactsPage(BaseModel):
    items: list[ProductFacts]
    next_cursor: str | None = None
    as_of: datetime = Field(description="When the page was read")
