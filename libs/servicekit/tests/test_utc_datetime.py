"""UTCDateTime reads every stored moment back timezone-aware in UTC, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa

from servicekit.db import Database, UTCDateTime

times = sa.Table(
    "utc_datetime_probe",
    sa.MetaData(),
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=True),
)


async def test_stored_moments_read_back_aware_utc(database: Database) -> None:
    moment = datetime(2026, 11, 29, 2, 30, 15, 123456, tzinfo=UTC)
    async with database.engine.begin() as conn:
        await conn.run_sync(times.create, checkfirst=True)
        await conn.execute(
            times.insert(),
            [
                {"id": 1, "at": moment},
                {"id": 2, "at": moment.astimezone(timezone(timedelta(hours=2)))},
                {"id": 3, "at": moment.replace(tzinfo=None)},
                {"id": 4, "at": None},
            ],
        )
    async with database.read() as conn:
        rows = dict((await conn.execute(sa.select(times.c.id, times.c.at).order_by(times.c.id))).all())
        later = (await conn.execute(sa.select(times.c.id).where(times.c.at >= moment))).scalars().all()
    assert rows[4] is None
    for key in (1, 2, 3):
        assert rows[key] == moment
        assert rows[key].utcoffset() == timedelta(0), rows[key]
        assert rows[key].isoformat().endswith("+00:00")
    assert sorted(later) == [1, 2, 3]
