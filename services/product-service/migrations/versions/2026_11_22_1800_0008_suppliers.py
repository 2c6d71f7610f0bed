"""Suppliers and their offers per SKU.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppliers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("default_lead_time_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_suppliers"),
        sa.UniqueConstraint("code", name="uq_suppliers_code"),
    )
    op.create_table(
        "supplier_offers",
        sa.Column("supplier_id", sa.String(36), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("supplier_sku", sa.String(100), nullable=False),
        sa.Column("cost_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("lead_time_days", sa.Integer(), nullable=True),
        sa.Column("min_order_quantity", sa.Integer(), nullable=False),
        sa.Column("available_quantity", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("supplier_id", "sku", name="pk_supplier_offers"),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["suppliers.id"], name="fk_supplier_offers_supplier_id_suppliers"
        ),
        sa.UniqueConstraint("supplier_id", "supplier_sku", name="uq_supplier_offers_supplier_sku"),
    )
    op.create_index("ix_supplier_offers_sku", "supplier_offers", ["sku"])


def downgrade() -> None:
    op.drop_table("supplier_offers")
    op.drop_table("suppliers")
