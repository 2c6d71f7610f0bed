"""Attribute families become editable: a version (their ETag) and the time of the last change.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "attribute_families", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("attribute_families", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attribute_families") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("version")
