"""Inventory: locations, stock levels, the movement ledger, reservations, channel buffers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "locations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_locations"),
        sa.UniqueConstraint("code", name="uq_locations_code"),
    )
    op.create_table(
        "stock_levels",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("location_id", sa.String(36), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("low_stock_threshold", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", "location_id", name="pk_stock_levels"),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name="fk_stock_levels_location_id_locations"
        ),
        sa.CheckConstraint("on_hand >= 0", name="ck_stock_levels_on_hand_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="ck_stock_levels_reserved_not_negative"),
        sa.CheckConstraint("reserved <= on_hand", name="ck_stock_levels_reserved_within_on_hand"),
    )
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("location_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("on_hand_delta", sa.Integer(), nullable=False),
        sa.Column("reserved_delta", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stock_movements"),
    )
    op.create_index("ix_stock_movements_sku", "stock_movements", ["sku"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("location_id", sa.String(36), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("order_id", sa.String(100), nullable=True),
        sa.Column("channel", sa.String(50), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reservations"),
    )
    op.create_index("ix_reservations_order_id", "reservations", ["order_id"])
    op.create_table(
        "channel_buffers",
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("safety_buffer", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel", name="pk_channel_buffers"),
    )


def downgrade() -> None:
    op.drop_table("channel_buffers")
    op.drop_table("reservations")
    op.drop_table("stock_movements")
    op.drop_table("stock_levels")
    op.drop_table("locations")
