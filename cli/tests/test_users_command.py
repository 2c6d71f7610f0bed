"""`ecom users` on a migrated gateway database."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from ecom_cli.main import app

runner = CliRunner()


def test_create_admin_prints_a_generated_password_once(var_dir: Path) -> None:
    result = runner.invoke(
        app, ["users", "create", "boss@example.test", "--role", "admin", "--var-dir", str(var_dir)]
    )

    assert result.exit_code == 0, result.output
    assert "created boss@example.test (admin)" in result.output
    assert re.search(r"password: \S{20,}", result.output)


def test_created_user_is_listed(var_dir: Path) -> None:
    runner.invoke(
        app,
        [
            "users",
            "create",
            "a@example.test",
            "--role",
            "analyst",
            "--password",
            "long enough pw!",
            "--var-dir",
            str(var_dir),
        ],
    )

    result = runner.invoke(app, ["users", "list", "--var-dir", str(var_dir)])

    assert "a@example.test" in result.output
    assert "analyst" in result.output


def test_an_unknown_role_fails_clearly(var_dir: Path) -> None:
    result = runner.invoke(
        app, ["users", "create", "x@example.test", "--role", "root", "--var-dir", str(var_dir)]
    )

    assert result.exit_code == 1
    assert "roles must be one or more of" in result.output
