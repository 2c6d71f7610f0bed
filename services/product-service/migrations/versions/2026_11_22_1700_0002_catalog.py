"""Catalog: attribute families, categories, products, variants.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attribute_families",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attribute_families"),
        sa.UniqueConstraint("code", name="uq_attribute_families_code"),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("parent_id", sa.String(36), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("family_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        sa.ForeignKeyConstraint(["parent_id"], ["categories.id"], name="fk_categories_parent_id_categories"),
        sa.ForeignKeyConstraint(
            ["family_id"], ["attribute_families.id"], name="fk_categories_family_id_attribute_families"
        ),
    )
    op.create_index("ix_categories_parent_id", "categories", ["parent_id"])
    op.create_table(
        "products",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("brand", sa.String(200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category_id", sa.String(36), nullable=True),
        sa.Column("family_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("media_urls", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name="fk_products_category_id_categories"
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["attribute_families.id"], name="fk_products_family_id_attribute_families"
        ),
    )
    op.create_index("ix_products_category_id", "products", ["category_id"])
    op.create_index("ix_products_status", "products", ["status"])
    op.create_table(
        "variants",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("gtin", sa.String(14), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name="pk_variants"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name="fk_variants_product_id_products"),
        sa.UniqueConstraint("gtin", name="uq_variants_gtin"),
    )
    op.create_index("ix_variants_product_id", "variants", ["product_id"])


def downgrade() -> None:
    op.drop_table("variants")
    op.drop_table("products")
    op.drop_table("categories")
    op.drop_table("attribute_families")
