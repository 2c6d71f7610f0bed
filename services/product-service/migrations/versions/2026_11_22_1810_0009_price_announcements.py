"""Price announcements: which prices have had their price-changed event published.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "price_announcements",
        sa.Column("price_id", sa.Integer(), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("price_id", name="pk_price_announcements"),
        sa.ForeignKeyConstraint(["price_id"], ["prices.id"], name="fk_price_announcements_price_id_prices"),
    )
    op.create_index("ix_prices_effective_from", "prices", ["effective_from"])


def downgrade() -> None:
    op.drop_index("ix_prices_effective_from", table_name="prices")
    op.drop_table("price_announcements")
