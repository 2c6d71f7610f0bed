"""The outbox index holds only the rows still to publish (create_pending_outbox_indexes).

Revision ID: 0002_outbox_pending
Revises: 0001
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

from servicekit.migrations import create_pending_outbox_indexes, drop_pending_outbox_indexes

revision: str = "0002_outbox_pending"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_pending_outbox_indexes()


def downgrade() -> None:
    drop_pending_outbox_indexes()
