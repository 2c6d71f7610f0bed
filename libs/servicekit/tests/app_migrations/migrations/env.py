"""Alembic environment for servicekit's own tests."""

from servicekit.db import metadata
from servicekit.migrations import run_env

run_env(metadata)
