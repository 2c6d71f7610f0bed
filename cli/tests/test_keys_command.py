"""`ecom keys` and the demo-admin seeder on a migrated gateway database."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from ecom_cli.commands.seed import run_seeders
from ecom_cli.main import app
from ecom_cli.seeders.gateway_admin import SEEDER

runner = CliRunner()


def test_rotate_adds_a_key_and_retires_the_old_one(var_dir: Path) -> None:
    first = runner.invoke(app, ["keys", "rotate", "--var-dir", str(var_dir)])
    second = runner.invoke(app, ["keys", "rotate", "--var-dir", str(var_dir)])
    listed = runner.invoke(app, ["keys", "list", "--var-dir", str(var_dir)])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert listed.output.count("retired") == 1
    assert listed.output.count("active") == 1


def test_the_seeder_creates_a_demo_admin_with_a_generated_password_once(var_dir: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=300)

    first = asyncio.run(run_seeders([SEEDER], var_dir=var_dir, scale=1, if_empty=True, console=console))
    second = asyncio.run(run_seeders([SEEDER], var_dir=var_dir, scale=1, if_empty=True, console=console))

    assert (first, second) == (1, 0)
    match = re.search(r"demo admin admin@ecom\.local with password (\S+)", out.getvalue())
    assert match
    assert len(match.group(1)) >= 20
    listed = runner.invoke(app, ["users", "list", "--var-dir", str(var_dir)])
    assert "admin@ecom.local" in listed.output
