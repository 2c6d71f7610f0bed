"""`ecom keys`: the gateway's token signing keys."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from ecom_cli.commands.users import gateway_database_url, table_console
from ecom_cli.options import VarDirOption
from ecom_cli.stack import DEFAULT_VAR_DIR

app = typer.Typer(help="Token signing keys: list and rotate.", no_args_is_help=True)


@app.command()
def rotate(var_dir: VarDirOption = DEFAULT_VAR_DIR) -> None:
    """Add a new signing key; the old one stays in the JWKS until the tokens it signed expire.

    A running gateway picks the new key up within GATEWAY_KEY_CACHE_SECONDS (5 s by default).
    """
    from gateway.keys import rotate_keys
    from gateway.operations import gateway_session, record

    async def run() -> str:
        async with gateway_session(gateway_database_url(var_dir)) as (session, ops):
            key = await rotate_keys(session, ops.box, access_token_ttl=ops.settings.access_token_ttl_seconds)
            await record(session, "key.rotate", target=key.kid)
            return key.kid

    Console(highlight=False).print(f"new signing key: {asyncio.run(run())}")


@app.command("list")
def list_(var_dir: VarDirOption = DEFAULT_VAR_DIR) -> None:
    """List the signing keys."""
    from gateway.keys import list_keys
    from gateway.operations import gateway_session

    async def run() -> list[tuple[str, str, str, str]]:
        async with gateway_session(gateway_database_url(var_dir)) as (session, _ops):
            return [
                (
                    k.kid,
                    k.status,
                    k.created_at.isoformat(timespec="seconds"),
                    str(k.published_until or ""),
                )
                for k in await list_keys(session)
            ]

    table = Table("kid", "status", "created", "published until (epoch)")
    for row in asyncio.run(run()):
        table.add_row(*row)
    table_console().print(table)
