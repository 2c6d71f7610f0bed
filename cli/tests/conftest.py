"""Fixtures shared by the CLI's tests."""

from pathlib import Path

import pytest

from gateway.config import ALEMBIC_INI
from servicekit.migrations import upgrade


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A var/ folder holding a migrated gateway database, as `ecom` commands find it."""
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    upgrade(ALEMBIC_INI, f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    return tmp_path
