"""Migration 0011: a shipment checkpoint is keyed by the carrier's code as the status tables read it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from servicekit.migrations import downgrade, upgrade
from sync_service.config import ALEMBIC_INI


def test_the_migration_folds_checkpoints_differing_only_in_letter_case(tmp_path: Path) -> None:
    """Migration 0011 keeps the first of the checkpoints the old unique key told apart by letter case, then
    refuses such a repeat."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'sync.db'}"
    upgrade(ALEMBIC_INI, url, "0010_facts_stamp")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    at = "2026-11-29 12:00:00.000000"
    insert = sa.text(
        "INSERT INTO shipment_checkpoints (shipment_id, status, carrier_status, occurred_at, received_at) "
        "VALUES (:shipment, :status, :code, :at, :at)"
    )
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO shipments (id, order_id, partner, carrier, carrier_key, tracking_number, "
                "status, last_occurred_at, version, created_at, updated_at) "
                "VALUES ('s1', 'o1', 'p', 'DHL', 'dhl', 'T1', 'delivered', :at, 1, :at, :at)"
            ),
            {"at": at},
        )
        for status, code in (
            ("in_transit", "transit"),
            ("delivered", "delivered"),
            ("delivered", "DELIVERED"),
        ):
            connection.execute(insert, {"shipment": "s1", "status": status, "code": code, "at": at})
    upgrade(ALEMBIC_INI, url)
    with engine.begin() as connection:
        rows = connection.execute(
            sa.text("SELECT carrier_status, carrier_code FROM shipment_checkpoints ORDER BY id")
        ).all()
        assert [tuple(row) for row in rows] == [("transit", "transit"), ("delivered", "delivered")]
    with engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(
            sa.text(
                "INSERT INTO shipment_checkpoints (shipment_id, status, carrier_status, carrier_code, "
                "occurred_at, received_at) VALUES ('s1', 'delivered', 'Delivered', 'delivered', :at, :at)"
            ),
            {"at": at},
        )
    downgrade(ALEMBIC_INI, url, "0010_facts_stamp")
    engine.dispose()
