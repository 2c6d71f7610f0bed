"""At most one active signing key: a partial unique index on `signing_keys.status` where it is 'active'.

Concurrent rotations (or two gateways creating the first key at once) could each leave a key active, and
the extra ones stayed published and trusted until the next rotation. Keys left active that way are
retired first (all but the newest), published for one more day so the tokens they signed still verify.

Revision ID: 0005
Revises: 0004_outbox_pending
Create Date: 2026-11-30 08:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004_outbox_pending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    keys = sa.table(
        "signing_keys",
        sa.column("kid", sa.String),
        sa.column("status", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("retired_at", sa.DateTime(timezone=True)),
        sa.column("published_until", sa.BigInteger),
    )
    connection = op.get_bind()
    active = (
        connection.execute(
            sa.select(keys.c.kid)
            .where(keys.c.status == "active")
            .order_by(keys.c.created_at.desc(), keys.c.kid.desc())
        )
        .scalars()
        .all()
    )
    if len(active) > 1:
        now = datetime.now(UTC)
        connection.execute(
            keys.update()
            .where(keys.c.kid.in_(active[1:]))
            .values(status="retired", retired_at=now, published_until=int(now.timestamp()) + 86_400)
        )
    op.create_index(
        "ux_signing_keys_one_active",
        "signing_keys",
        ["status"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("ux_signing_keys_one_active", table_name="signing_keys")
