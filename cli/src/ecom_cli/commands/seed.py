"""`ecom seed`: fill the services' databases with realistic demo data."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ecom_cli.errors import CommandError, message_for
from ecom_cli.options import VarDirOption
from ecom_cli.seeding import SeedContext, Seeder, discover_seeders
from ecom_cli.stack import DEFAULT_VAR_DIR, SYNC_CLIENT_FILE_VAR, service_env, service_named, sync_client_path


def database_url_for(seeder: Seeder, var_dir: Path) -> str:
    service = service_named(seeder.service)
    return service_env(service, var_dir=var_dir)[service.database_url_var]


async def run_seeders(
    seeders: list[Seeder], *, var_dir: Path, scale: float, if_empty: bool, console: Console
) -> int:
    """Run the seeders in order; returns how many ran."""
    ran = 0
    shared: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        for seeder in seeders:
            url = database_url_for(seeder, var_dir)
            if if_empty and not await seeder.is_empty(url):
                console.print(f"seed {seeder.name}: already has data, skipped")
                continue
            try:
                summary = await seeder.seed(SeedContext(url, scale, console, progress, shared))
            except Exception as exc:
                hint = "" if if_empty else " (is it seeded already? --if-empty skips databases holding data)"
                raise CommandError(f"seed {seeder.name}: {message_for(exc)}{hint}") from exc
            console.print(f"seed {seeder.name}: {summary}")
            ran += 1
    return ran


def seed(
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
    scale: Annotated[float, typer.Option(min=0.01, help="Multiplier of the default amount of data.")] = 1.0,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Seed only services whose database holds no data yet.")
    ] = False,
    only: Annotated[list[str] | None, typer.Option(help="Run only these seeders (by name).")] = None,
) -> None:
    """Create realistic demo data (customers, orders, catalog, stock…) in the migrated databases.

    Databases are SQLite files under --var-dir unless <PREFIX>DATABASE_URL is set. Run `ecom migrate` first.
    """
    console = Console(highlight=False)
    # sync-service's seeded client leaves its secret next to the databases, where `ecom dev` looks for it.
    os.environ.setdefault(SYNC_CLIENT_FILE_VAR, str(sync_client_path(var_dir.resolve())))
    seeders = discover_seeders()
    if only:
        unknown = sorted(set(only) - {s.name for s in seeders})
        if unknown:
            known = ", ".join(s.name for s in seeders) or "none"
            raise typer.BadParameter(f"unknown seeder(s) {', '.join(unknown)} (known: {known})")
        seeders = [s for s in seeders if s.name in only]
    if not seeders:
        console.print("nothing to seed: no seeders are installed")
        return
    asyncio.run(
        run_seeders(seeders, var_dir=var_dir.resolve(), scale=scale, if_empty=if_empty, console=console)
    )
