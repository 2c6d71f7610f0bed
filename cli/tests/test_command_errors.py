"""Every expected failure of a command is a clear one-line message and a non-zero exit, never a
traceback."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ecom_cli.errors import DEBUG_VARIABLE
from ecom_cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)


def _no_traceback(output: str) -> None:
    assert "Traceback" not in output
    assert "│" not in output  # Typer's framed tracebacks


def test_seeding_the_gateway_admin_twice_says_so_without_a_traceback(var_dir: Path) -> None:
    first = runner.invoke(app, ["seed", "--only", "admin", "--var-dir", str(var_dir)])

    second = runner.invoke(app, ["seed", "--only", "admin", "--var-dir", str(var_dir)])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 1
    assert "error: seed admin: a user with email admin@ecom.local already exists" in second.output
    assert "--if-empty" in second.output
    _no_traceback(second.output)


def test_a_command_on_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    result = runner.invoke(app, ["users", "list", "--var-dir", str(tmp_path)])

    assert result.exit_code == 1
    assert "run `ecom migrate` first" in result.output
    _no_traceback(result.output)


def test_creating_a_taken_email_fails_clearly(var_dir: Path) -> None:
    args = ["users", "create", "dup@example.test", "--role", "analyst", "--var-dir", str(var_dir)]
    runner.invoke(app, args)

    result = runner.invoke(app, args)

    assert result.exit_code == 1
    assert "already exists" in result.output
    _no_traceback(result.output)


def test_rotating_an_unknown_client_fails_clearly(var_dir: Path) -> None:
    result = runner.invoke(app, ["clients", "rotate", "no-such-client", "--var-dir", str(var_dir)])

    assert result.exit_code != 0
    _no_traceback(result.output)


def test_an_unexpected_error_is_one_line_unless_debugging(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("ecom_cli.commands.users.gateway_database_url", broken)

    quiet = runner.invoke(app, ["users", "list", "--var-dir", str(var_dir)])
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    loud = runner.invoke(app, ["users", "list", "--var-dir", str(var_dir)])

    assert quiet.exit_code == 1
    assert "error: RuntimeError: disk on fire" in quiet.output
    assert f"{DEBUG_VARIABLE}=1" in quiet.output
    _no_traceback(quiet.output)
    assert isinstance(loud.exception, RuntimeError)


def test_a_migration_that_cannot_reach_its_database_is_one_line(tmp_path: Path) -> None:
    from ecom_cli.migrations import report_migrations, run_migrations
    from ecom_cli.stack import GATEWAY, service_env

    unreachable = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    base = {**os.environ, GATEWAY.database_url_var: unreachable}
    results = run_migrations([GATEWAY], lambda service: service_env(service, var_dir=tmp_path, base_env=base))
    out = io.StringIO()

    assert not report_migrations(Console(file=out, width=300), results)
    report = out.getvalue()
    assert "gateway | error: cannot connect:" in report
    assert "migration failed (exit code 1)" in report
    _no_traceback(report)
