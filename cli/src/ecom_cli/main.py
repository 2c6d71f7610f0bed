"""The `ecom` Typer app: every command module is registered here."""

from __future__ import annotations

import typer

from ecom_cli.commands import clients, dev, dlq, events, keys, migrate, seed, sync, users, version
from ecom_cli.errors import HandledGroup

app = typer.Typer(
    name="ecom",
    cls=HandledGroup,
    help="Ecom Data Platform: run the dev stack, migrate databases, operate the platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

app.command()(dev.dev)
app.command()(migrate.migrate)
app.command()(seed.seed)
app.command()(version.version)
app.command()(events.events)
app.add_typer(dlq.app, name="dlq")
app.add_typer(sync.app, name="sync")
app.add_typer(users.app, name="users")
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
