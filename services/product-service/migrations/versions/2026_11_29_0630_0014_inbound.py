"""Incoming stock from suppliers' announced deliveries; a backorder's expected date.

Revision ID: 0014_inbound
Revises: 0013_sync_channels
Create Date: 2026-11-29 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_inbound"
down_revision: str | None = "0013_sync_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incoming_stock",
        sa.Column("inbound_id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("location_id", sa.String(length=36), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("expected_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("supplier", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("inbound_id", "sku", name="pk_incoming_stock"),
    )
    op.create_index("ix_incoming_stock_sku", "incoming_stock", ["sku"])
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expected_date", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_column("expected_date")
    op.drop_table("incoming_stock")
