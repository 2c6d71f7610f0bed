"""On SQLite the service's connections keep a page cache large enough for the activity fold's random-keyed
indexes (`database_sqlite_cache_kib`, bench/analytics), not SQLite's default 2,000 KiB."""

from __future__ import annotations

from pathlib import Path

from conftest import settings_for
from sqlalchemy import text

from analytics_service.config import Settings
from analytics_service.main import create_app
from servicekit.testing import running_app


async def test_the_service_s_sqlite_connections_keep_its_page_cache(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}"  # a SQLite setting, whatever the suite runs on
    app = create_app(settings_for(url, "127.0.0.1:9", consumers=False, kafka_enabled=False))
    async with running_app(app), app.state.database.engine.connect() as connection:
        cache = (await connection.execute(text("PRAGMA cache_size"))).scalar()
    assert cache == -Settings().database_sqlite_cache_kib  # type: ignore[operator]
    assert cache < -2000
