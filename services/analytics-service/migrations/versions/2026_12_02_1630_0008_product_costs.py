"""`product_costs`: each SKU's unit cost in a currency from `effective_from` on, so an order is costed
at the cost in effect when it was placed whichever of its order and price events arrived first
(warehouse/costs.py). Filled from `product_facts`' latest known costs; order lines already costed keep
their cost.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "product_costs",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cost_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sku", "currency", "effective_from", name=op.f("pk_product_costs")),
    )
    op.execute(
        "INSERT INTO product_costs (sku, currency, effective_from, cost_minor) "
        "SELECT sku, currency, price_effective_from, cost_minor FROM product_facts "
        "WHERE cost_minor IS NOT NULL AND currency IS NOT NULL AND price_effective_from IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("product_costs")
