"""Model outputs: demand forecasts, product neighbours and bestsellers, predicted CLV, model runs and
the refit lock (see forecasting/, recommendations/, clv/ and fitting/models.py).

Revision ID: 0003m
Revises: 0002
Create Date: 2026-11-29 05:33:43.305515
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003m"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "demand_forecasts",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("history_start", sa.Date(), nullable=False),
        sa.Column("history_end", sa.Date(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("adi", sa.Float(), nullable=True),
        sa.Column("interval_level", sa.Float(), nullable=False),
        sa.Column("service_level", sa.Float(), nullable=False),
        sa.Column("mean", sa.JSON(), nullable=False),
        sa.Column("median", sa.JSON(), nullable=False),
        sa.Column("lower", sa.JSON(), nullable=False),
        sa.Column("upper", sa.JSON(), nullable=False),
        sa.Column("lead_quantiles", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", "location_id", name=op.f("pk_demand_forecasts")),
    )
    op.create_table(
        "model_locks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_model_locks")),
    )
    op.execute("INSERT INTO model_locks (name) VALUES ('refit')")
    op.create_table(
        "model_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_until", sa.Date(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_runs")),
    )
    with op.batch_alter_table("model_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_runs_status"), ["status"], unique=False)

    op.create_table(
        "popular_products",
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("rank", name=op.f("pk_popular_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_popular_products_sku")),
    )
    op.create_table(
        "predicted_clv",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("expected_purchases", sa.Float(), nullable=False),
        sa.Column("probability_alive", sa.Float(), nullable=False),
        sa.Column("predicted_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_predicted_clv")),
    )
    op.create_table(
        "product_neighbours",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("neighbour_sku", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sku", "rank", name=op.f("pk_product_neighbours")),
    )


def downgrade() -> None:
    op.drop_table("product_neighbours")
    op.drop_table("predicted_clv")
    op.drop_table("popular_products")
    with op.batch_alter_table("model_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_runs_status"))

    op.drop_table("model_runs")
    op.drop_table("model_locks")
    op.drop_table("demand_forecasts")
