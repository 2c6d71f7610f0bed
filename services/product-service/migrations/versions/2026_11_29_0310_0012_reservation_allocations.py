"""Reservations split across locations (one allocation row per location) and reservations that expire.

Every existing reservation that holds units at a location gets its one allocation row.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("reservations", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_reservations_expires_at", "reservations", ["expires_at"])
    op.create_table(
        "reservation_allocations",
        sa.Column("reservation_id", sa.String(36), nullable=False),
        sa.Column("location_id", sa.String(36), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name="fk_reservation_allocations_reservation_id_reservations",
        ),
        sa.PrimaryKeyConstraint("reservation_id", "location_id", name="pk_reservation_allocations"),
    )
    op.execute(
        "INSERT INTO reservation_allocations (reservation_id, location_id, quantity) "
        "SELECT id, location_id, quantity FROM reservations WHERE location_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("reservation_allocations")
    op.drop_index("ix_reservations_expires_at", table_name="reservations")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("expires_at")
