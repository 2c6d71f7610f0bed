"""Fitted linkage models and duplicate-detection jobs (training, re-scan).

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


def downgrade() -> None:
    op.drop_index("ix_duplicate_jobs_status", table_name="duplicate_jobs")
    op.drop_table("duplicate_jobs")
    op.drop_index("ix_linkage_models_trained_at", table_name="linkage_models")
    op.drop_table("linkage_models")
