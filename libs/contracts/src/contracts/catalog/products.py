"""Events on ecom.products.v1, produced by product-service. Key: product id."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts import topics
from contracts.registry import EventData, register

ProductStatus = Literal["draft", "active", "archived"]


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
