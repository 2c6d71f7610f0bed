"""A resync skips recomputing a listing whose facts did not change since its desired state was computed:
each SKU's facts carry a version (bumped whenever a product, variant, price or stock fact of it changes)
and a listing remembers the facts it was computed from (`facts_stamp`: that version and a digest of
everything else a state depends on; null when unknown).

Revision ID: 0010_facts_stamp
Revises: 0009_resync_source
Create Date: 2026-11-29 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_facts_stamp"
down_revision: str | None = "0009_resync_source"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_variants") as batch:
        batch.add_column(sa.Column("facts_version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("facts_stamp", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("facts_stamp")
    with op.batch_alter_table("catalog_variants") as batch:
        batch.drop_column("facts_version")
