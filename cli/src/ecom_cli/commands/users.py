"""`ecom users`: people's accounts in the gateway (email, password, roles)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ecom_cli.options import VarDirOption
from ecom_cli.stack import DEFAULT_VAR_DIR, GATEWAY, service_env

app = typer.Typer(help="People's accounts in the gateway.", no_args_is_help=True)


def gateway_database_url(var_dir: Path) -> str:
    """GATEWAY_DATABASE_URL, else the dev stack's SQLite file under var_dir."""
    return service_env(GATEWAY, var_dir=var_dir.resolve())[GATEWAY.database_url_var]


def table_console() -> Console:
    """Wide enough for the tables when piped (ids must not wrap); a terminal uses its own width."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def fail(console: Console, message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


@app.command()
def create(
    email: Annotated[str, typer.Argument(help="The person's email (their login).")],
    role: Annotated[
        list[str], typer.Option("--role", help="admin, data_steward, analyst or support; repeat for several.")
    ],
    password: Annotated[
        str | None,
        typer.Option(help="The password (at least 12 characters); default: a generated one, printed once."),
    ] = None,
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
) -> None:
    """Create a person's account (run `ecom migrate` first)."""
    from gateway.operations import gateway_session, record
    from gateway.users import UserError, create_user, generate_password

    console = Console(highlight=False)
    secret = password or generate_password()

    async def run() -> str:
        async with gateway_session(gateway_database_url(var_dir)) as (session, _ops):
            user = await create_user(session, email=email, password=secret, roles=role)
            await record(session, "user.create", target=user.id, roles=user.roles)
            return user.id

    try:
        user_id = asyncio.run(run())
    except UserError as exc:
        raise fail(console, str(exc)) from None
    console.print(f"created {email} ({', '.join(sorted(set(role)))}) id {user_id}")
    if password is None:
        console.print(f"password: {secret}  (shown once)")


@app.command("list")
def list_(var_dir: VarDirOption = DEFAULT_VAR_DIR) -> None:
    """List people's accounts."""
    from gateway.operations import gateway_session
    from gateway.users import list_users

    async def run() -> list[tuple[str, str, str, str, str]]:
        async with gateway_session(gateway_database_url(var_dir)) as (session, _ops):
            return [
                (u.id, u.email, ", ".join(u.roles), u.status, "yes" if u.totp_enabled else "no")
                for u in await list_users(session)
            ]

    table = Table("id", "email", "roles", "status", "2FA")
    for row in asyncio.run(run()):
        table.add_row(*row)
    table_console().print(table)


def _set_status(ref: str, var_dir: Path, *, active: bool) -> None:
    from gateway.operations import gateway_session, record
    from gateway.users import find_user, set_user_status

    console = Console(highlight=False)

    async def run() -> tuple[str, str, bool] | None:
        async with gateway_session(gateway_database_url(var_dir)) as (session, _ops):
            user = await find_user(session, ref)
            if user is None:
                return None
            changed = await set_user_status(session, user, active=active)
            await record(
                session, "user.enable" if active else "user.disable", target=user.id, changed=changed
            )
            return user.id, user.email, changed

    found = asyncio.run(run())
    if found is None:
        raise fail(console, f"no user has the email or id {ref}")
    user_id, email, changed = found
    state = "enabled" if active else "disabled"
    console.print(f"{email} ({user_id}) {state}" if changed else f"{email} ({user_id}) was already {state}")


@app.command()
def disable(
    user: Annotated[str, typer.Argument(help="The person's email or user id (usr_…).")],
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
) -> None:
    """Disable a person's account: no login or refresh; the gateway refuses their tokens within
    GATEWAY_PRINCIPAL_CACHE_SECONDS (5 s), services within their revocation-list poll (5 s)."""
    _set_status(user, var_dir, active=False)


@app.command()
def enable(
    user: Annotated[str, typer.Argument(help="The person's email or user id (usr_…).")],
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
) -> None:
    """Enable a disabled account again."""
    _set_status(user, var_dir, active=True)
