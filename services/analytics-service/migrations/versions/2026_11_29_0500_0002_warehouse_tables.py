"""The analytics store: raw activity events, sessions, identity links, customers and consent, order
and product facts, stock, marketing spend and expenses, and the daily rollups (see warehouse/models.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity_events",
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("session_id", sa.String(length=100), nullable=True),
        sa.Column("anonymous_id", sa.String(length=100), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("original_customer_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_activity_events")),
    )
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.create_index("ix_activity_events_anonymous", ["anonymous_id"], unique=False)
        batch_op.create_index("ix_activity_events_customer", ["customer_id"], unique=False)
        batch_op.create_index("ix_activity_events_day_event", ["day", "event"], unique=False)
        batch_op.create_index("ix_activity_events_session", ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_activity_events_sku"), ["sku"], unique=False)

    op.create_table(
        "activity_sessions",
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("anonymous_id", sa.String(length=100), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("page_views", sa.Integer(), nullable=False),
        sa.Column("product_views", sa.Integer(), nullable=False),
        sa.Column("viewed", sa.Boolean(), nullable=False),
        sa.Column("added", sa.Boolean(), nullable=False),
        sa.Column("checkout", sa.Boolean(), nullable=False),
        sa.Column("purchased", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_activity_sessions")),
    )
    with op.batch_alter_table("activity_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activity_sessions_anonymous_id"), ["anonymous_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_activity_sessions_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_activity_sessions_day"), ["day"], unique=False)

    op.create_table(
        "analytics_customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
        sa.Column("merge_id", sa.String(length=64), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.Column("acquisition_channel", sa.String(length=50), nullable=True),
        sa.Column("acquisition_campaign", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_analytics_customers")),
    )
    with op.batch_alter_table("analytics_customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analytics_customers_merged_into"), ["merged_into"], unique=False)

    op.create_table(
        "customer_consents",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "purpose", name=op.f("pk_customer_consents")),
    )
    op.create_table(
        "expenses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expenses")),
    )
    with op.batch_alter_table("expenses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_expenses_day"), ["day"], unique=False)

    op.create_table(
        "identity_links",
        sa.Column("anonymous_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("original_customer_id", sa.String(length=64), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("anonymous_id", name=op.f("pk_identity_links")),
    )
    with op.batch_alter_table("identity_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_links_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "marketing_spend",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "campaign", name=op.f("pk_marketing_spend")),
    )
    op.create_table(
        "order_facts",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("order_number", sa.String(length=100), nullable=True),
        sa.Column("placed", sa.Boolean(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("original_customer_id", sa.String(length=64), nullable=True),
        sa.Column("sales_channel", sa.String(length=50), nullable=True),
        sa.Column("channel", sa.String(length=50), nullable=True),
        sa.Column("campaign", sa.String(length=100), nullable=True),
        sa.Column("session_id", sa.String(length=100), nullable=True),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("cogs_minor", sa.BigInteger(), nullable=False),
        sa.Column("cogs_complete", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("is_first", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_facts")),
    )
    with op.batch_alter_table("order_facts", schema=None) as batch_op:
        batch_op.create_index("ix_order_facts_customer", ["customer_id", "placed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_facts_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_facts_placed_at"), ["placed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_facts_session_id"), ["session_id"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("unit_cost_minor", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("order_id", "line_no", name=op.f("pk_order_lines")),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_lines_sku"), ["sku"], unique=False)

    op.create_table(
        "product_facts",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=True),
        sa.Column("category_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("price_minor", sa.BigInteger(), nullable=True),
        sa.Column("cost_minor", sa.BigInteger(), nullable=True),
        sa.Column("price_effective_from", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_product_facts")),
    )
    with op.batch_alter_table("product_facts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_product_facts_category_id"), ["category_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_product_facts_product_id"), ["product_id"], unique=False)

    op.create_table(
        "rollup_daily_channel",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("sessions_viewed", sa.Integer(), nullable=False),
        sa.Column("sessions_added", sa.Integer(), nullable=False),
        sa.Column("sessions_checkout", sa.Integer(), nullable=False),
        sa.Column("sessions_purchased", sa.Integer(), nullable=False),
        sa.Column("page_views", sa.Integer(), nullable=False),
        sa.Column("product_views", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("new_customer_orders", sa.Integer(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.Column("cogs_minor", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("cancelled_orders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "campaign", name=op.f("pk_rollup_daily_channel")),
    )
    op.create_table(
        "rollup_daily_product",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("adds", sa.Integer(), nullable=False),
        sa.Column("removes", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.Column("cogs_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "sku", "location_id", name=op.f("pk_rollup_daily_product")),
    )
    op.create_table(
        "stock_by_location",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", "location_id", name=op.f("pk_stock_by_location")),
    )
    op.create_table(
        "segment_definitions",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_segment_definitions")),
    )


def downgrade() -> None:
    op.drop_table("segment_definitions")
    op.drop_table("stock_by_location")
    op.drop_table("rollup_daily_product")
    op.drop_table("rollup_daily_channel")
    with op.batch_alter_table("product_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_facts_product_id"))
        batch_op.drop_index(batch_op.f("ix_product_facts_category_id"))

    op.drop_table("product_facts")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_sku"))

    op.drop_table("order_lines")
    with op.batch_alter_table("order_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_facts_session_id"))
        batch_op.drop_index(batch_op.f("ix_order_facts_placed_at"))
        batch_op.drop_index(batch_op.f("ix_order_facts_day"))
        batch_op.drop_index("ix_order_facts_customer")

    op.drop_table("order_facts")
    op.drop_table("marketing_spend")
    with op.batch_alter_table("identity_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_links_customer_id"))

    op.drop_table("identity_links")
    with op.batch_alter_table("expenses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expenses_day"))

    op.drop_table("expenses")
    op.drop_table("customer_consents")
    with op.batch_alter_table("analytics_customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_customers_merged_into"))

    op.drop_table("analytics_customers")
    with op.batch_alter_table("activity_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activity_sessions_day"))
        batch_op.drop_index(batch_op.f("ix_activity_sessions_customer_id"))
        batch_op.drop_index(batch_op.f("ix_activity_sessions_anonymous_id"))

    op.drop_table("activity_sessions")
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activity_events_sku"))
        batch_op.drop_index("ix_activity_events_session")
        batch_op.drop_index("ix_activity_events_day_event")
        batch_op.drop_index("ix_activity_events_customer")
        batch_op.drop_index("ix_activity_events_anonymous")

    op.drop_table("activity_events")
