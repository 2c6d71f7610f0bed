"""`ecom sync replay`: push a channel's failed listings again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ecom_cli.options import VarDirOption
from ecom_cli.stack import DEFAULT_VAR_DIR, service_env, service_named

app = typer.Typer(help="Sales-channel sync: replay failed pushes.", no_args_is_help=True)


def sync_database_url(var_dir: Path) -> str:
    """SYNC_DATABASE_URL, else the dev stack's SQLite file under var_dir."""
    service = service_named("sync")
    return service_env(service, var_dir=var_dir.resolve())[service.database_url_var]


async def replay_channel(database_url: str, code: str, delivery_id: str | None) -> list[str]:
    """Set the channel's failed listings (or one failed delivery's) back to pending; the running
    sync-service's sweep pushes them within SYNC_PUSH_SWEEP_SECONDS. Returns the SKUs requeued."""
    from sqlalchemy import select
    from sqlmodel import col

    from servicekit.db import Database
    from sync_service.channels.models import Channel
    from sync_service.push import deliveries

    database = Database(database_url)
    try:
        async with database.session() as session:
            channel = (
                (await session.execute(select(Channel).where(col(Channel.code) == code))).scalars().first()
            )
            if channel is None:
                raise LookupError(f"no channel with code {code!r}")
            if delivery_id is not None:
                return await deliveries.replay(session, channel_id=channel.id, delivery_id=delivery_id)
            return await deliveries.replay_failed(session, channel_id=channel.id)
    finally:
        await database.dispose()


@app.command()
def replay(
    channel: Annotated[str, typer.Argument(help="The channel's code, e.g. marketplace")],
    delivery: Annotated[
        str | None, typer.Option("--delivery", help="Replay only this failed delivery (its id).")
    ] = None,
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
) -> None:
    """Push CHANNEL's failed listings again (all, or those of one failed delivery)."""
    from servicekit.errors import ServiceError

    console = Console(highlight=False)
    try:
        skus = asyncio.run(replay_channel(sync_database_url(var_dir), channel, delivery))
    except (LookupError, ServiceError) as exc:
        console.print(f"[red]error:[/red] {getattr(exc, 'detail', None) or exc}")
        raise typer.Exit(1) from None
    if not skus:
        console.print(f"{channel}: nothing to replay")
        return
    console.print(f"{channel}: {len(skus)} listing(s) queued for a push again")
