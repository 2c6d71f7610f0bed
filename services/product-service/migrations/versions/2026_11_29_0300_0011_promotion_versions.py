"""Promotions become editable: a version (their ETag) and the time of the last change.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("promotions", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("promotions", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("promotions") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("version")
