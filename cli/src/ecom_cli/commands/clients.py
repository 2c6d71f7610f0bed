"""`ecom clients`: machine clients of the gateway (storefront, pos, logistics, sync)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ecom_cli.commands.users import fail, gateway_database_url, table_console
from ecom_cli.options import VarDirOption
from ecom_cli.stack import DEFAULT_VAR_DIR

app = typer.Typer(help="Machine clients: create, list, rotate secrets, disable.", no_args_is_help=True)

ClientIdArgument = Annotated[str, typer.Argument(help="The client id, e.g. storefront-1a2b3c4d5e6f7a8b")]


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="What the client is, e.g. 'EU storefront'.")],
    role: Annotated[
        str, typer.Option("--role", help="storefront, pos, logistics or sync (sync-service's own).")
    ],
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
) -> None:
    """Create a client; prints its id and secret (the secret is shown only this once)."""
    from gateway.clients import ClientError, create_client
    from gateway.operations import gateway_session, record

    console = Console(highlight=False)

    async def run() -> tuple[str, str]:
        async with gateway_session(gateway_database_url(var_dir)) as (session, _ops):
            client, secret = await create_client(session, name=name, role=role)
            await record(session, "client.create", target=client.client_id, role=role, name=name)
            return client.client_id, secret

    try:
        client_id, secret = asyncio.run(run())
    except ClientError as exc:
        raise fail(console, str(exc)) from None
    console.print(f"client_id: {client_id}")
    console.print(f"client_secret: {secret}  (shown once)")


@app.command("list")
def list_(var_dir: VarDirOption = DEFAULT_VAR_DIR) -> None:
    """List clients (never their secrets)."""
    from gateway.clients import list_clients
    from gateway.operations import gateway_session

    async def run() -> list[tuple[str, str, str, str, str]]:
        async with gateway_session(gateway_database_url(var_dir)) as (session, _ops):
            return [
                (c.client_id, c.name, c.role, c.status, c.created_at.isoformat(timespec="seconds"))
                for c in await list_clients(session)
            ]

    table = Table("client_id", "name", "role", "status", "created")
    for row in asyncio.run(run()):
        table.add_row(*row)
    table_console().print(table)


@app.command()
def rotate(client_id: ClientIdArgument, var_dir: VarDirOption = DEFAULT_VAR_DIR) -> None:
    """Give a client a new secret (printed once); the old one stops working at once."""
    from gateway.clients import ClientError, rotate_secret
    from gateway.operations import gateway_session, record

    console = Console(highlight=False)

    async def run() -> str:
        async with gateway_session(gateway_database_url(var_dir)) as (session, _ops):
            _client, secret = await rotate_secret(session, client_id)
            await record(session, "client.rotate", target=client_id)
            return secret

    try:
        secret = asyncio.run(run())
    except ClientError as exc:
        raise fail(console, str(exc)) from None
    console.print(f"client_secret: {secret}  (shown once)")


def _set_status(client_id: str, var_dir: Path, *, active: bool) -> None:
    from gateway.clients import ClientError, set_status
    from gateway.operations import gateway_session, record

    console = Console(highlight=False)

    async def run() -> None:
        async with gateway_session(gateway_database_url(var_dir)) as (session, _ops):
            await set_status(session, client_id, active=active)
            await record(session, "client.enable" if active else "client.disable", target=client_id)

    try:
        asyncio.run(run())
    except ClientError as exc:
        raise fail(console, str(exc)) from None
    console.print(f"{client_id}: {'enabled' if active else 'disabled'}")


@app.command()
def disable(client_id: ClientIdArgument, var_dir: VarDirOption = DEFAULT_VAR_DIR) -> None:
    """Disable a client: no new tokens; the gateway refuses its tokens within a few seconds."""
    _set_status(client_id, var_dir, active=False)


@app.command()
def enable(client_id: ClientIdArgument, var_dir: VarDirOption = DEFAULT_VAR_DIR) -> None:
    """Enable a disabled client again."""
    _set_status(client_id, var_dir, active=True)
