"""KPI reads without scans: `rollup_daily` (the channel rollup summed per day), `customer_orders` on the
channel rollups (counted orders with a customer id), and the prior-order days on order facts (among all
of a customer's counted orders, and among those of the order's channel) with indexes, so the repeat
purchase rate of a range counts index entries instead of grouping orders by customer (see
kpis/service.py). Existing rows are filled in: the per-day totals from the channel rollup, the
prior-order days with window functions over each customer's counted orders in the reporting currency
(ANALYTICS_REPORTING_CURRENCY, as the service reads it), `customer_orders` from the order facts.

Revision ID: 0005
Revises: 0004_outbox_pending
Create Date: 2026-11-29 09:30:00
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004_outbox_pending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "sessions",
    "sessions_viewed",
    "sessions_added",
    "sessions_checkout",
    "sessions_purchased",
    "page_views",
    "product_views",
    "events",
    "orders",
    "new_customer_orders",
    "revenue_minor",
    "cogs_minor",
    "units",
    "cancelled_orders",
    "customer_orders",
)
MONEY = ("revenue_minor", "cogs_minor")


def upgrade() -> None:
    currency = os.environ.get("ANALYTICS_REPORTING_CURRENCY", "EUR")
    with op.batch_alter_table("rollup_daily_channel", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_orders", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("order_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prior_order_day", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("second_prior_order_day", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("prior_channel_order_day", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("second_prior_channel_order_day", sa.Date(), nullable=True))
        batch_op.create_index(
            "ix_order_facts_prior_day", ["prior_order_day", "day", "second_prior_order_day"], unique=False
        )
        batch_op.create_index(
            "ix_order_facts_prior_channel_day",
            [
                "prior_channel_order_day",
                "day",
                "second_prior_channel_order_day",
                "channel",
                "sales_channel",
            ],
            unique=False,
        )
    op.create_table(
        "rollup_daily",
        sa.Column("day", sa.Date(), nullable=False),
        *[
            sa.Column(name, sa.BigInteger() if name in MONEY else sa.Integer(), nullable=False)
            for name in COUNTS
        ],
        sa.PrimaryKeyConstraint("day", name=op.f("pk_rollup_daily")),
    )

    def counted(alias: str) -> str:
        return (
            f"{alias}.placed AND {alias}.status NOT IN ('cancelled', 'refunded') "
            f"AND {alias}.currency = :currency AND {alias}.day IS NOT NULL "
            f"AND {alias}.customer_id IS NOT NULL"
        )

    op.get_bind().execute(
        sa.text(
            f"UPDATE rollup_daily_channel SET customer_orders = (SELECT COUNT(*) FROM order_facts o "
            f"WHERE {counted('o')} AND o.day = rollup_daily_channel.day "
            "AND COALESCE(o.channel, o.sales_channel, 'unknown') = rollup_daily_channel.channel "
            "AND COALESCE(o.campaign, '') = rollup_daily_channel.campaign)"
        ),
        {"currency": currency},
    )
    op.get_bind().execute(
        sa.text(
            f"INSERT INTO rollup_daily (day, {', '.join(COUNTS)}) "
            f"SELECT day, {', '.join(f'SUM({name})' for name in COUNTS)} "
            "FROM rollup_daily_channel GROUP BY day"
        )
    )
    op.get_bind().execute(
        sa.text(
            "UPDATE order_facts SET prior_order_day = c.prior, second_prior_order_day = c.second, "
            "prior_channel_order_day = c.channel_prior, second_prior_channel_order_day = c.channel_second "
            "FROM (SELECT order_id, "
            "LAG(day, 1) OVER (PARTITION BY customer_id ORDER BY placed_at, order_id) AS prior, "
            "LAG(day, 2) OVER (PARTITION BY customer_id ORDER BY placed_at, order_id) AS second, "
            "LAG(day, 1) OVER (PARTITION BY customer_id, COALESCE(channel, sales_channel, 'unknown') "
            "ORDER BY placed_at, order_id) AS channel_prior, "
            "LAG(day, 2) OVER (PARTITION BY customer_id, COALESCE(channel, sales_channel, 'unknown') "
            "ORDER BY placed_at, order_id) AS channel_second "
            f"FROM order_facts f WHERE {counted('f')}"
            ") AS c WHERE order_facts.order_id = c.order_id"
        ),
        {"currency": currency},
    )


def downgrade() -> None:
    op.drop_table("rollup_daily")
    with op.batch_alter_table("order_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_order_facts_prior_channel_day")
        batch_op.drop_index("ix_order_facts_prior_day")
        batch_op.drop_column("second_prior_channel_order_day")
        batch_op.drop_column("prior_channel_order_day")
        batch_op.drop_column("second_prior_order_day")
        batch_op.drop_column("prior_order_day")
    with op.batch_alter_table("rollup_daily_channel", schema=None) as batch_op:
        batch_op.drop_column("customer_orders")
