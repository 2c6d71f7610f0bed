"""Alembic environment for analytics-service: same migrations on SQLite and PostgreSQL."""

import analytics_service.models  # noqa: F401  (registers the tables on the metadata)
from analytics_service.config import Settings
from servicekit.db import metadata
from servicekit.migrations import run_env

run_env(metadata, default_url=Settings().database_url)
