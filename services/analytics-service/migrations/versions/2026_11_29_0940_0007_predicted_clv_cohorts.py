"""`predicted_clv_cohorts`: the last refit's predictions summed per first-order day x acquisition channel x
campaign, so the `predicted_clv` KPI is a prefix sum instead of an average over every customer (filled by
the next refit; until then the KPI reads no rows and is null, as before a first fit).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "predicted_clv_cohorts",
        sa.Column("first_order_day", sa.Date(), nullable=False),
        sa.Column("acquisition_channel", sa.String(length=50), nullable=False),
        sa.Column("acquisition_campaign", sa.String(length=100), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("predicted_spend_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "first_order_day",
            "acquisition_channel",
            "acquisition_campaign",
            name=op.f("pk_predicted_clv_cohorts"),
        ),
    )


def downgrade() -> None:
    op.drop_table("predicted_clv_cohorts")
