"""Import jobs record a heartbeat, so a job left running by a stopped process can be failed.

Revision ID: 0016_import_heartbeat
Revises: 0015_outbox_pending
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_import_heartbeat"
down_revision: str | None = "0015_outbox_pending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("product_import_jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_import_jobs") as batch:
        batch.drop_column("heartbeat_at")
