"""Alembic environment for gateway: same migrations on SQLite and PostgreSQL."""

import gateway.models  # noqa: F401  (registers the tables on the metadata)
from gateway.config import Settings
from servicekit.db import metadata
from servicekit.migrations import run_env

run_env(metadata, default_url=Settings().database_url)
