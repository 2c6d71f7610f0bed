"""Full resync from product-service's API: the stock projection remembers when each row last changed (so an
older read never overwrites a newer event), and a sync job reports its phase and the products it pulled.

Revision ID: 0009_resync_source
Revises: 0008_outbox_pending
Create Date: 2026-11-29 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_resync_source"
down_revision: str | None = "0008_outbox_pending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_stock") as batch:
        batch.add_column(sa.Column("as_of", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sync_jobs") as batch:
        batch.add_column(sa.Column("phase", sa.String(10), nullable=True))
        batch.add_column(sa.Column("pulled", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("sync_jobs") as batch:
        batch.drop_column("pulled")
        batch.drop_column("phase")
    with op.batch_alter_table("catalog_stock") as batch:
        batch.drop_column("as_of")
