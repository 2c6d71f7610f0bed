"""Refresh tokens remember the access token issued with them, to revoke it with the family on reuse.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("access_jti", sa.String(64), nullable=True))
        batch.add_column(sa.Column("access_expires_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("access_expires_at")
        batch.drop_column("access_jti")
