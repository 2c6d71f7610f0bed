"""Fitted linkage models, duplicate-detection jobs (training, re-scan), import error modes and per-row
import results.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "linkage_models",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_linkage_models_trained_at", "linkage_models", ["trained_at"])
    op.create_table(
        "duplicate_jobs",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.String(length=200), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_duplicate_jobs_status", "duplicate_jobs", ["status"])
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("on_error", sa.String(length=16), nullable=False, server_default="refuse")
        )
        batch_op.add_column(sa.Column("skipped_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "import_rows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.UniqueConstraint("job_id", "row", name="uq_import_rows_job_row"),
    )
    op.create_index("ix_import_rows_job_id", "import_rows", ["job_id"])
    # A block's most recent members are read through this index, whatever the size of the block.
    op.create_index(
        "ix_customer_blocking_keys_key_customer", "customer_blocking_keys", ["key", "customer_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_customer_blocking_keys_key_customer", table_name="customer_blocking_keys")
    op.drop_index("ix_import_rows_job_id", table_name="import_rows")
    op.drop_table("import_rows")
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_column("skipped_count")
        batch_op.drop_column("on_error")
    op.drop_index("ix_duplicate_jobs_status", table_name="duplicate_jobs")
    op.drop_table("duplicate_jobs")
    op.drop_index("ix_linkage_models_trained_at", table_name="linkage_models")
    op.drop_table("linkage_models")
