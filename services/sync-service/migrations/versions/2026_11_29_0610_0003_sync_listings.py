"""Listings per channel and SKU, and the catalog facts they are computed from.

Revision ID: 0003_sync_listings
Revises: 0002_sync_channels
Create Date: 2026-11-29 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sync_listings"
down_revision: str | None = "0002_sync_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_products",
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("brand", sa.String(500), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("media_urls", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("category_path", sa.JSON(), nullable=False),
        sa.Column("completeness", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name="pk_catalog_products"),
    )
    op.create_table(
        "catalog_variants",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("gtin", sa.String(20), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("sku", name="pk_catalog_variants"),
    )
    op.create_index("ix_catalog_variants_product_id", "catalog_variants", ["product_id"])
    op.create_table(
        "catalog_prices",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("effective_from", TZ, nullable=False),
        sa.PrimaryKeyConstraint("sku", "currency", "channel", name="pk_catalog_prices"),
    )
    op.create_table(
        "catalog_promotions",
        sa.Column("promotion_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("percent_bp", sa.Integer(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("skus", sa.JSON(), nullable=False),
        sa.Column("category_ids", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("promotion_id", name="pk_catalog_promotions"),
    )
    op.create_table(
        "catalog_stock",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("location_id", sa.String(36), nullable=False),
        sa.Column("location_code", sa.String(50), nullable=True),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sku", "location_id", name="pk_catalog_stock"),
    )
    op.create_table(
        "listings",
        sa.Column("channel_id", sa.String(36), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("desired", sa.JSON(), nullable=False),
        sa.Column("desired_hash", sa.String(64), nullable=False),
        sa.Column("desired_seq", sa.Integer(), nullable=False),
        sa.Column("desired_at", TZ, nullable=False),
        sa.Column("publishable", sa.Boolean(), nullable=False),
        sa.Column("acked", sa.JSON(), nullable=True),
        sa.Column("acked_hash", sa.String(64), nullable=True),
        sa.Column("acked_seq", sa.Integer(), nullable=False),
        sa.Column("acked_at", TZ, nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "sku", name="pk_listings"),
    )
    op.create_index("ix_listings_channel_status", "listings", ["channel_id", "status", "sku"])


def downgrade() -> None:
    op.drop_index("ix_listings_channel_status", table_name="listings")
    op.drop_table("listings")
    op.drop_table("catalog_stock")
    op.drop_table("catalog_promotions")
    op.drop_table("catalog_prices")
    op.drop_index("ix_catalog_variants_product_id", table_name="catalog_variants")
    op.drop_table("catalog_variants")
    op.drop_table("catalog_products")
