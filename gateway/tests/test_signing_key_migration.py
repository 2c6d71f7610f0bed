"""Migration 0005 retires the extra active signing keys that racing rotations left, then allows one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.config import ALEMBIC_INI
from servicekit.migrations import downgrade, upgrade


def test_the_migration_keeps_the_newest_active_key_and_retires_the_others(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    upgrade(ALEMBIC_INI, url, "0004_outbox_pending")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with engine.begin() as connection:
        for n, status in enumerate(("retired", "active", "active", "active")):
            connection.execute(
                sa.text(
                    "INSERT INTO signing_keys (kid, public_pem, private_pem_enc, status, created_at) "
                    "VALUES (:kid, 'pub', 'priv', :status, :created_at)"
                ),
                {"kid": f"k{n}", "status": status, "created_at": (start + timedelta(minutes=n)).isoformat()},
            )
    upgrade(ALEMBIC_INI, url)
    with engine.begin() as connection:
        rows = dict(connection.execute(sa.text("SELECT kid, status FROM signing_keys")).all())
        until = (
            connection.execute(sa.text("SELECT published_until FROM signing_keys WHERE kid IN ('k1', 'k2')"))
            .scalars()
            .all()
        )
        assert rows == {"k0": "retired", "k1": "retired", "k2": "retired", "k3": "active"}
        assert all(value is not None and value > datetime.now(UTC).timestamp() for value in until)
        with pytest.raises(sa.exc.IntegrityError):
            connection.execute(
                sa.text(
                    "INSERT INTO signing_keys (kid, public_pem, private_pem_enc, status, created_at) "
                    "VALUES ('k4', 'pub', 'priv', 'active', '2026-11-30T09:00:00+00:00')"
                )
            )
    downgrade(ALEMBIC_INI, url, "0004_outbox_pending")
    engine.dispose()
