"""Fresh databases for tests and benchmarks: a SQLite temp file, or a uniquely named PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from servicekit.db import asyncpg_dsn

TEST_DATABASE_URL_ENV = "TEST_DATABASE_URL"


async def _execute(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _scratch_name(label: str) -> str:
    return f"t_{label[:30]}_{uuid.uuid4().hex[:10]}".lower().replace("-", "_")


@asynccontextmanager
async def scratch_postgres_database(base_url: str, label: str) -> AsyncIterator[str]:
    """Create a uniquely named database on `base_url`'s server, yield its URL, drop it afterwards."""
    name = _scratch_name(label)
    admin = asyncpg_dsn(base_url)
    await _execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(tmp_dir: Path, label: str = "test") -> Iterator[str]:
    """Yield the URL of an empty database and remove it afterwards.

    PostgreSQL when TEST_DATABASE_URL is set (a database named after `label` is created on that
    server and dropped after), otherwise a SQLite file under `tmp_dir`. Call outside an event loop.
    """
    base = os.environ.get(TEST_DATABASE_URL_ENV)
    if not base:
        yield f"sqlite+aiosqlite:///{tmp_dir / f'{label}.db'}"
        return
    name = _scratch_name(label)
    admin = asyncpg_dsn(base)
    asyncio.run(_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class MigratedTemplates:
    """Databases migrated once per test session and copied for each module that needs a migrated one.

    Running a service's Alembic migrations costs 0.2-1 s per database; copying the result (a file copy on
    SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL) gives the same schema and rows for a fraction of
    it. The template itself is migrated by the real migrations. Call outside an event loop; `close()`
    drops PostgreSQL templates.
    """

    def __init__(self, tmp_dir: Path) -> None:
        self._tmp_dir = tmp_dir
        self._templates: dict[Path, str] = {}

    def _template(self, alembic_ini: Path) -> str:
        from servicekit.migrations import upgrade

        template = self._templates.get(alembic_ini)
        if template is None:
            label = f"tpl_{alembic_ini.parent.name}".replace("-", "_")
            base = os.environ.get(TEST_DATABASE_URL_ENV)
            if base:
                name = _scratch_name(label)
                asyncio.run(_execute(asyncpg_dsn(base), f'CREATE DATABASE "{name}"'))
                template = make_url(base).set(database=name).render_as_string(hide_password=False)
            else:
                template = f"sqlite+aiosqlite:///{self._tmp_dir / f'{label}.db'}"
            self._templates[alembic_ini] = template
            upgrade(alembic_ini, template)
        return template

    def migrate(self, alembic_ini: Path, database_url: str) -> None:
        """Make the empty database `database_url` (from `fresh_database`) a migrated one."""
        template = self._template(alembic_ini)
        if make_url(database_url).get_backend_name() == "sqlite":
            source = make_url(template).database
            target = make_url(database_url).database
            if not source or not target:
                raise ValueError(f"not a SQLite file: {database_url}")
            shutil.copyfile(source, target)
            return
        name = make_url(database_url).database
        admin = asyncpg_dsn(os.environ[TEST_DATABASE_URL_ENV])
        template_name = make_url(template).database
        asyncio.run(_recreate_from_template(admin, name, template_name))

    def close(self) -> None:
        base = os.environ.get(TEST_DATABASE_URL_ENV)
        for template in self._templates.values():
            if base and make_url(template).get_backend_name() != "sqlite":
                name = make_url(template).database
                asyncio.run(_execute(asyncpg_dsn(base), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._templates.clear()


async def _recreate_from_template(admin: str, name: str | None, template: str | None) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for attempt in range(50):
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except asyncpg.ObjectInUseError:  # the template's last connection is still closing
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


def using_postgres() -> bool:
    return bool(os.environ.get(TEST_DATABASE_URL_ENV))
