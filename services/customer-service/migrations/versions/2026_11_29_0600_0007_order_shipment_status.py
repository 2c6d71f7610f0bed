"""Orders show the latest shipment status a logistics partner reported.

Revision ID: 0007_shipments
Revises: 0006
Create Date: 2026-11-29 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_shipments"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shipment_status", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("shipment_updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("shipment_updated_at")
        batch_op.drop_column("shipment_status")
