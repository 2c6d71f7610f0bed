"""Catalog tables: categories, attribute families, products and their variants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class AttributeFamily(SQLModel, table=True):
    __tablename__ = "attribute_families"

    id: str = Field(primary_key=True, max_length=36)
    code: str = Field(max_length=100, unique=True)
    title: str = Field(max_length=200)
    attributes: list[dict[str, Any]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class Category(SQLModel, table=True):
    __tablename__ = "categories"

    id: str = Field(primary_key=True, max_length=36)
    parent_id: str | None = Field(default=None, foreign_key="categories.id", index=True, max_length=36)
    title: str = Field(max_length=200)
    family_id: str | None = Field(default=None, foreign_key="attribute_families.id", max_length=36)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Product(SQLModel, table=True):
    __tablename__ = "products"

    id: str = Field(primary_key=True, max_length=36)
    title: str = Field(max_length=300)
    brand: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    category_id: str | None = Field(default=None, foreign_key="categories.id", index=True, max_length=36)
    family_id: str | None = Field(default=None, foreign_key="attribute_families.id", max_length=36)
    status: str = Field(max_length=20, index=True)
    attributes: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    media_urls: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    channels: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    version: int = Field(default=1)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Variant(SQLModel, table=True):
    __tablename__ = "variants"

    sku: str = Field(primary_key=True, max_length=100)
    product_id: str = Field(foreign_key="products.id", index=True, max_length=36)
    gtin: str | None = Field(default=None, max_length=14, unique=True)
    attributes: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
