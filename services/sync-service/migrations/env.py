"""Alembic environment for sync-service: same migrations on SQLite and PostgreSQL."""

import sync_service.models  # noqa: F401  (registers the tables on the metadata)
from servicekit.db import metadata
from servicekit.migrations import run_env
from sync_service.config import Settings

run_env(metadata, default_url=Settings().database_url)
