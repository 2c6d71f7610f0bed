"""Stores' receipts recorded from end-of-day sales files.

Revision ID: 0007_sales
Revises: 0006_inbound
Create Date: 2026-11-29 06:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_sales"
down_revision: str | None = "0006_inbound"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pos_receipts",
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("receipt_id", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("store", sa.String(length=36), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "receipt_id", name="pk_pos_receipts"),
    )


def downgrade() -> None:
    op.drop_table("pos_receipts")
