"""Listings and the facts they are computed from (sync-service's projection of product-service's
product, price, promotion and stock events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class CanonicalJSON(sa.TypeDecorator[Any]):
    """JSON stored as canonical text (keys sorted, no spaces: `compute.state_json`), so the column read as
    text is what a push carries and what `state_hash` digests. A `CanonicalText` value is that text already
    (a resync page serializes each state once) and is stored as it is."""

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        from sync_service.listings.compute import CanonicalText, state_json

        def process(value: Any) -> str | None:
            if value is None:
                return None
            return value if isinstance(value, CanonicalText) else state_json(value)

        return process


class CatalogProduct(SQLModel, table=True):
    """A product as its latest event described it."""

    __tablename__ = "catalog_products"

    product_id: str = Field(primary_key=True, max_length=36)
    status: str = Field(max_length=20)
    title: str = Field(max_length=500)
    brand: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    attributes: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    media_urls: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    channels: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    category_path: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    completeness: dict[str, float] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    version: int


class CatalogVariant(SQLModel, table=True):
    __tablename__ = "catalog_variants"

    sku: str = Field(primary_key=True, max_length=100)
    product_id: str = Field(max_length=36, index=True)
    gtin: str | None = Field(default=None, max_length=20)
    attributes: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    facts_version: int = Field(
        default=0,
        sa_column=sa.Column(sa.Integer(), nullable=False, server_default="0"),
        description="Bumped whenever a fact of this SKU changes (its product, variant, prices or stock: "
        "`listings.facts.bump_facts`); a listing's `facts_stamp` names the version it was computed from",
    )


class CatalogPrice(SQLModel, table=True):
    """The price in effect of a SKU per currency and channel ("" = every channel)."""

    __tablename__ = "catalog_prices"

    sku: str = Field(primary_key=True, max_length=100)
    currency: str = Field(primary_key=True, max_length=3)
    channel: str = Field(primary_key=True, max_length=50)
    amount_minor: int = Field(sa_type=sa.BigInteger)
    effective_from: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class CatalogPromotion(SQLModel, table=True):
    """A promotion that started and has not ended (rows are removed when it ends)."""

    __tablename__ = "catalog_promotions"

    promotion_id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=20)
    percent_bp: int | None = None
    amount_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    currency: str | None = Field(default=None, max_length=3)
    skus: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    category_ids: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    channels: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    starts_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class CatalogStock(SQLModel, table=True):
    __tablename__ = "catalog_stock"

    sku: str = Field(primary_key=True, max_length=100)
    location_id: str = Field(primary_key=True, max_length=36)
    location_code: str | None = Field(default=None, max_length=50)
    available: int
    as_of: datetime | None = Field(
        default=None,
        sa_column=sa.Column(UTCDateTime(), nullable=True),
        description="When product-service's stock row was in this state (the event's time, or the row's "
        "last change read from its API); an older fact never overwrites it. Null: before it was kept",
    )


LISTING_STATUSES = ("in_sync", "pending", "failed", "drifted", "unpublished")


class Listing(SQLModel, table=True):
    """One SKU on one channel: the state it should have there (desired) and the state the channel last
    acknowledged. `desired_seq` grows with every change of the desired state; a delivery acknowledges
    the sequence it carried (compare-and-set), so an answer to an older state never marks a newer one
    as in sync."""

    __tablename__ = "listings"
    __table_args__ = (sa.Index("ix_listings_channel_status", "channel_id", "status", "sku"),)

    channel_id: str = Field(primary_key=True, max_length=36)
    sku: str = Field(primary_key=True, max_length=100)
    product_id: str = Field(max_length=36)
    desired: dict[str, Any] = Field(sa_column=sa.Column(CanonicalJSON(), nullable=False))
    desired_hash: str = Field(max_length=64)
    desired_seq: int = 1
    desired_at: datetime = Field(
        sa_column=sa.Column(UTCDateTime(), nullable=False),
        description="Time of the event that produced the desired state (delivery latency starts here)",
    )
    publishable: bool
    acked: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=True))
    acked_hash: str | None = Field(default=None, max_length=64)
    acked_seq: int = 0
    acked_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    status: str = Field(max_length=12)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    facts_stamp: str | None = Field(
        default=None,
        max_length=100,
        description="The facts the desired state was computed from by a resync page (`listings.pages`): "
        "the SKU's `facts_version` and a digest of the channel, the running promotions and the computation; "
        "null when not known (any other writer of the desired state clears it)",
    )
