"""Recommendation tables, replaced by each refit: every SKU's nearest SKUs and the recent bestsellers."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class ProductNeighbour(SQLModel, table=True):
    """`neighbour_sku` is the `rank`-th SKU most bought together with `sku` (see cooccurrence.py);
    `customers` bought both."""

    __tablename__ = "product_neighbours"

    sku: str = Field(primary_key=True, max_length=100)
    rank: int = Field(primary_key=True)
    neighbour_sku: str = Field(max_length=100)
    score: float
    customers: int


class PopularProduct(SQLModel, table=True):
    """SKUs by distinct buyers in the last 30 days before the fit: the fallback when a customer has no
    history (and the baseline the bench beats)."""

    __tablename__ = "popular_products"

    rank: int = Field(primary_key=True)
    sku: str = Field(max_length=100, unique=True)
    customers: int
