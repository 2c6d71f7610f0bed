"""Suppliers' inbound deliveries.

Revision ID: 0006_inbound
Revises: 0005_shipments
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_inbound"
down_revision: str | None = "0005_shipments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_deliveries",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("supplier", sa.String(length=50), nullable=False),
        sa.Column("supplier_reference", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("location_id", sa.String(length=36), nullable=False),
        sa.Column("expected_date", sa.Date(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("received_lines", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("supplier", "supplier_reference", name="uq_inbound_deliveries_supplier"),
    )


def downgrade() -> None:
    op.drop_table("inbound_deliveries")
