"""Drop the indexes of `activity_events` that no read path uses (`(day, event)` and `sku`): every tracked
event wrote them, and only the from-scratch recomputation (a full scan anyway) reads those columns.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 09:35:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_events_sku")
        batch_op.drop_index("ix_activity_events_day_event")


def downgrade() -> None:
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.create_index("ix_activity_events_day_event", ["day", "event"], unique=False)
        batch_op.create_index("ix_activity_events_sku", ["sku"], unique=False)
