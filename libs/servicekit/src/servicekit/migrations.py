"""Alembic helpers so every service's migrations run the same way on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from servicekit.db import NAMING_CONVENTION


def alembic_config(alembic_ini: Path, database_url: str) -> Config:
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(alembic_ini: Path, database_url: str, revision: str = "head") -> None:
    """Run a service's migrations up to `revision` (call outside a running event loop)."""
    command.upgrade(alembic_config(alembic_ini, database_url), revision)


def downgrade(alembic_ini: Path, database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(alembic_ini, database_url), revision)


def _run_sync(connection: Connection, target_metadata: MetaData | None) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(target_metadata: MetaData | None) -> None:
    config = context.config
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync, target_metadata)
    await engine.dispose()


def run_env(target_metadata: MetaData | None = None, *, default_url: str | None = None) -> None:
    """The body of a service's migrations/env.py.

    The URL is the one `upgrade()` set, else `default_url` (the service's settings, so plain
    `alembic upgrade head` uses the service's DATABASE_URL environment variable).
    """
    config = context.config
    if not config.get_main_option("sqlalchemy.url") and default_url:
        config.set_main_option("sqlalchemy.url", default_url.replace("%", "%%"))
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(target_metadata))


def create_platform_tables() -> None:
    """Create the outbox, inbox and idempotency-key tables; call from a service's first migration."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=NAMING_CONVENTION["pk"] % {"table_name": "outbox"}),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])
    op.create_index("ix_outbox_key", "outbox", ["key", "id"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    )


_PENDING = sa.text("published_at IS NULL")


def create_pending_outbox_indexes() -> None:
    """Index only the outbox rows still to publish, in place of the first migration's full indexes.

    The outbox keeps its published rows, so full indexes on `(published_at, id)` and `(key, id)` grew with
    every event ever written, and the relay's claim walked the published rows to find the unpublished ones
    (23 ms a claim at 60,000 rows, growing with the table, until a relay fell behind a steady 1,000
    events/s). A partial index on `id` holds only the unpublished rows, a few batches at most, so the
    claim, its check for rows held by another relay and the backlog count cost the same at any table
    size. Call from a service's migration."""
    op.create_index("ix_outbox_pending", "outbox", ["id"], postgresql_where=_PENDING, sqlite_where=_PENDING)
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.drop_index("ix_outbox_key", table_name="outbox")


def drop_pending_outbox_indexes() -> None:
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])
    op.create_index("ix_outbox_key", "outbox", ["key", "id"])
    op.drop_index("ix_outbox_pending", table_name="outbox")


def drop_platform_tables() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("inbox")
    op.drop_index("ix_outbox_key", table_name="outbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.drop_table("outbox")
