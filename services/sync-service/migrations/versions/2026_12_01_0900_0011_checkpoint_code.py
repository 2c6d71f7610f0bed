"""A shipment checkpoint is identified by the carrier's code as the status tables read it (case, spaces,
dashes and dots aside): `carrier_code`, backfilled from `carrier_status`, replaces `carrier_status` in the
unique key. Checkpoints that the old key told apart only by such a difference (`DELIVERED` and
`delivered` at the same moment: one checkpoint sent twice) are folded into the first one received.

Revision ID: 0011_checkpoint_code
Revises: 0010_facts_stamp
Create Date: 2026-12-01 09:00:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_checkpoint_code"
down_revision: str | None = "0010_facts_stamp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIQUE = "uq_shipment_checkpoints_shipment_id"
_SEPARATORS = re.compile(r"[\s.\-/]+")


def _code_key(code: str) -> str:
    """sync_service.shipments.statuses.code_key as of this revision (a migration does not import the app)."""
    return _SEPARATORS.sub("_", code.strip().lower())


def upgrade() -> None:
    with op.batch_alter_table("shipment_checkpoints") as batch:
        batch.add_column(sa.Column("carrier_code", sa.String(length=100), nullable=True))
    bind = op.get_bind()
    checkpoints = sa.table(
        "shipment_checkpoints",
        sa.column("id", sa.Integer()),
        sa.column("shipment_id", sa.String()),
        sa.column("carrier_status", sa.String()),
        sa.column("carrier_code", sa.String()),
        sa.column("occurred_at"),
    )
    # One UPDATE per distinct carrier status (a few dozen), not per checkpoint.
    for (status,) in bind.execute(sa.select(checkpoints.c.carrier_status).distinct()).all():
        bind.execute(
            checkpoints.update()
            .where(checkpoints.c.carrier_status == status)
            .values(carrier_code=_code_key(status))
        )
    first = sa.select(sa.func.min(checkpoints.c.id)).group_by(
        checkpoints.c.shipment_id, checkpoints.c.carrier_code, checkpoints.c.occurred_at
    )
    bind.execute(checkpoints.delete().where(checkpoints.c.id.not_in(first)))
    with op.batch_alter_table("shipment_checkpoints") as batch:
        batch.alter_column("carrier_code", existing_type=sa.String(length=100), nullable=False)
        batch.drop_constraint(UNIQUE, type_="unique")
        batch.create_unique_constraint(UNIQUE, ["shipment_id", "carrier_code", "occurred_at"])


def downgrade() -> None:
    with op.batch_alter_table("shipment_checkpoints") as batch:
        batch.drop_constraint(UNIQUE, type_="unique")
        batch.create_unique_constraint(UNIQUE, ["shipment_id", "carrier_status", "occurred_at"])
        batch.drop_column("carrier_code")
