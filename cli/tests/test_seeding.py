"""`ecom seed`: seeders run in order, and `--if-empty` skips a database that has data."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path

from rich.console import Console
from sqlalchemy.engine import make_url

from ecom_cli.commands.seed import run_seeders
from ecom_cli.seeding import SeedContext, Seeder


def _path(url: str) -> str:
    return str(make_url(url).database)


async def _is_empty(url: str) -> bool:
    with sqlite3.connect(_path(url)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS demo (n INTEGER)")
        return conn.execute("SELECT count(*) FROM demo").fetchone()[0] == 0


async def _seed(context: SeedContext) -> str:
    rows = int(10 * context.scale)
    with sqlite3.connect(_path(context.database_url)) as conn:
        conn.executemany("INSERT INTO demo VALUES (?)", [(i,) for i in range(rows)])
    return f"{rows} rows"


DEMO = Seeder(name="demo", service="customer", is_empty=_is_empty, seed=_seed)


def test_if_empty_seeds_once_and_then_skips(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)

    first = asyncio.run(run_seeders([DEMO], var_dir=tmp_path, scale=2, if_empty=True, console=console))
    second = asyncio.run(run_seeders([DEMO], var_dir=tmp_path, scale=2, if_empty=True, console=console))

    assert (first, second) == (1, 0)
    assert "seed demo: 20 rows" in out.getvalue()
    assert "seed demo: already has data, skipped" in out.getvalue()
    with sqlite3.connect(tmp_path / "customer.db") as conn:
        assert conn.execute("SELECT count(*) FROM demo").fetchone()[0] == 20
