"""`ecom migrate`: upgrade every service's database, exactly as `ecom dev` does before starting."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer
from rich.console import Console

from ecom_cli.migrations import report_migrations, run_migrations
from ecom_cli.options import VarDirOption
from ecom_cli.stack import DEFAULT_VAR_DIR, STACK, StackService, service_env, service_named


def _known_services(names: list[str] | None) -> list[str] | None:
    for name in names or []:
        try:
            service_named(name)
        except KeyError:
            known = ", ".join(service.name for service in STACK)
            raise typer.BadParameter(f"unknown service {name!r} (known: {known})") from None
    return names


def migrate(
    services: Annotated[
        list[str] | None,
        typer.Argument(
            help="Services to migrate (default: all of them).",
            callback=_known_services,
            show_default=False,
        ),
    ] = None,
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
) -> None:
    """Upgrade each service's database to the latest migration.

    Databases are SQLite files under --var-dir unless <PREFIX>DATABASE_URL is set
    (e.g. CUSTOMER_DATABASE_URL).
    """
    selected: list[StackService] = [service_named(name) for name in services] if services else list(STACK)
    var_dir = var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    results = run_migrations(selected, partial(service_env, var_dir=var_dir))
    if not report_migrations(Console(highlight=False), results):
        raise typer.Exit(1)
