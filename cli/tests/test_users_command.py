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


def _create(var_dir: Path, email: str) -> None:
    args = ["users", "create", email, "--role", "analyst", "--password", "long enough pw!"]
    assert runner.invoke(app, [*args, "--var-dir", str(var_dir)]).exit_code == 0


def test_disable_and_enable_a_person_by_email(var_dir: Path) -> None:
    _create(var_dir, "d@example.test")

    disabled = runner.invoke(app, ["users", "disable", "d@example.test", "--var-dir", str(var_dir)])
    again = runner.invoke(app, ["users", "disable", "D@example.test", "--var-dir", str(var_dir)])
    listed = runner.invoke(app, ["users", "list", "--var-dir", str(var_dir)])
    enabled = runner.invoke(app, ["users", "enable", "d@example.test", "--var-dir", str(var_dir)])

    assert disabled.exit_code == 0, disabled.output
    assert "d@example.test" in disabled.output
    assert "disabled" in disabled.output
    assert "already disabled" in again.output
    assert "disabled" in listed.output
    assert enabled.exit_code == 0
    assert "enabled" in enabled.output


def test_disabling_is_audited(var_dir: Path) -> None:
    import asyncio

    from sqlalchemy import select

    from gateway.models import AuditEvent
    from gateway.operations import gateway_session

    _create(var_dir, "audited@example.test")
    runner.invoke(app, ["users", "disable", "audited@example.test", "--var-dir", str(var_dir)])

    async def actions() -> list[tuple[str, str | None]]:
        async with gateway_session(f"sqlite+aiosqlite:///{var_dir / 'gateway.db'}") as (session, _ops):
            rows = await session.scalars(select(AuditEvent).where(AuditEvent.action == "user.disable"))
            return [(row.actor or "", row.target) for row in rows]

    (actor, target), *_ = asyncio.run(actions())
    assert actor == "cli"
    assert target is not None
    assert target.startswith("usr_")


def test_disabling_an_unknown_person_fails_clearly(var_dir: Path) -> None:
    result = runner.invoke(app, ["users", "disable", "ghost@example.test", "--var-dir", str(var_dir)])

    assert result.exit_code == 1
    assert "no user has the email or id ghost@example.test" in result.output
