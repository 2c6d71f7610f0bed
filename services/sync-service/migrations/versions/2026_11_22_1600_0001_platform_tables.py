"""Platform tables of sync-service: outbox, inbox, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:00:00
"""

from collections.abc import Sequence

from servicekit.migrations import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_platform_tables()


def downgrade() -> None:
    drop_platform_tables()
