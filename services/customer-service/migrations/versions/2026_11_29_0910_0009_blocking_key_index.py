"""Drop the index on customer_blocking_keys.key alone: every read of a block goes through
(key, customer_id), which also serves a lookup by key, so the single-column index was a second copy
of the same key written with every blocking key (about a dozen per profile) and never read.

Revision ID: 0009_blocking_key_index
Revises: 0008_outbox_pending
Create Date: 2026-11-29 09:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_blocking_key_index"
down_revision: str | None = "0008_outbox_pending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_customer_blocking_keys_key", table_name="customer_blocking_keys")


def downgrade() -> None:
    op.create_index("ix_customer_blocking_keys_key", "customer_blocking_keys", ["key"], unique=False)
