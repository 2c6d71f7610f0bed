"""Import jobs and their row errors.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 17:50:00
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
        "product_import_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rows_processed", sa.Integer(), nullable=False),
        sa.Column("rows_created", sa.Integer(), nullable=False),
        sa.Column("rows_updated", sa.Integer(), nullable=False),
        sa.Column("rows_failed", sa.Integer(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_product_import_jobs"),
    )
    op.create_table(
        "product_import_row_errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(200), nullable=True),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_product_import_row_errors"),
    )
    op.create_index("ix_product_import_row_errors_job_id", "product_import_row_errors", ["job_id"])


def downgrade() -> None:
    op.drop_table("product_import_row_errors")
    op.drop_table("product_import_jobs")
