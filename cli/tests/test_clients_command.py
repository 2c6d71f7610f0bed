"""`ecom clients` on a migrated gateway database."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from ecom_cli.main import app

runner = CliRunner()


def _create(var_dir: Path) -> tuple[str, str]:
    result = runner.invoke(
        app, ["clients", "create", "EU shop", "--role", "storefront", "--var-dir", str(var_dir)]
    )
    assert result.exit_code == 0, result.output
    client_id = re.search(r"client_id: (\S+)", result.output)
    secret = re.search(r"client_secret: (\S+)", result.output)
    assert client_id
    assert secret
    return client_id.group(1), secret.group(1)


def test_create_prints_the_id_and_the_secret(var_dir: Path) -> None:
    client_id, secret = _create(var_dir)

    assert client_id.startswith("storefront-")
    assert len(secret) >= 40


def test_list_shows_clients_without_secrets(var_dir: Path) -> None:
    client_id, secret = _create(var_dir)

    result = runner.invoke(app, ["clients", "list", "--var-dir", str(var_dir)])

    assert client_id in result.output
    assert secret not in result.output


def test_rotate_prints_a_new_secret(var_dir: Path) -> None:
    client_id, secret = _create(var_dir)

    result = runner.invoke(app, ["clients", "rotate", client_id, "--var-dir", str(var_dir)])

    assert result.exit_code == 0
    assert "client_secret: " in result.output
    assert secret not in result.output


def test_disable_marks_the_client_disabled(var_dir: Path) -> None:
    client_id, _ = _create(var_dir)

    result = runner.invoke(app, ["clients", "disable", client_id, "--var-dir", str(var_dir)])
    listed = runner.invoke(app, ["clients", "list", "--var-dir", str(var_dir)])

    assert f"{client_id}: disabled" in result.output
    assert "disabled" in listed.output


def test_disabling_an_unknown_client_fails_clearly(var_dir: Path) -> None:
    result = runner.invoke(app, ["clients", "disable", "nope", "--var-dir", str(var_dir)])

    assert result.exit_code == 1
    assert "no client nope" in result.output
