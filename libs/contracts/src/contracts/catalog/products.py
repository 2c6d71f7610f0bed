"""Events on ecom.products.v1, produced by product-service. Key: product id."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.registry import EventData, register

ProductStatus = Literal["draft", "active", "archived"]


class VariantFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str
    gtin: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, description="The variant's axes, e.g. size")


class ProductDetails(BaseModel):
    """What a channel shows of a product, so a consumer (sync-service) needs no other lookup."""

    model_config = ConfigDict(extra="forbid")

    title: str
    brand: str | None = None
    description: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    media_urls: list[str] = Field(default_factory=list)
    channels: list[str] = Field(
        default_factory=list, description="Channels the product is published to; empty means every one"
    )
    category_path: list[str] = Field(
        default_factory=list, description="The product's category and its ancestors, nearest first"
    )
    completeness: dict[str, float] = Field(
        default_factory=dict,
        description="Per channel that requires attributes: the share of them filled",
    )
    variants: list[VariantFacts] = Field(default_factory=list)


@register(
    "ecom.product.created.v1",
    topic=topics.PRODUCTS,
    producer="product-service",
    description="A product was added to the catalog.",
)
class ProductCreated(EventData):
    product_id: str = Field(description="The new product's id")
    status: str = Field(description="draft, active or archived")
    category_id: str | None = Field(default=None, description="The product's category")
    skus: list[str] = Field(default_factory=list, description="SKUs of the product's variants")
    version: int = Field(default=1, description="The product's version (its ETag)")
    details: ProductDetails | None = Field(
        default=None,
        description="The product as channels show it (absent from events before 2026-11)",
    )


@register(
    "ecom.product.updated.v1",
    topic=topics.PRODUCTS,
    producer="product-service",
    description="A product's data changed (fields, attributes, variants or status other than archived).",
)
class ProductUpdated(EventData):
    product_id: str
    status: ProductStatus
    version: int = Field(description="The product's version after the change")
    changed_fields: list[str] = Field(description="Top-level fields that changed, e.g. title, attributes")
    skus: list[str] = Field(default_factory=list, description="SKUs of the product's variants")
    category_id: str | None = Field(default=None, description="The product's category after the change")
    details: ProductDetails | None = Field(
        default=None,
        description="The product as channels show it (absent from events before 2026-11)",
    )


@register(
    "ecom.product.archived.v1",
    topic=topics.PRODUCTS,
    producer="product-service",
    description="A product was archived: channels should stop selling it.",
)
class ProductArchived(EventData):
    product_id: str
    version: int
    skus: list[str] = Field(default_factory=list)
    details: ProductDetails | None = Field(
        default=None,
        description="The product as channels show it (absent from events before 2026-11)",
    )
