"""`ecom version`."""

from __future__ import annotations

import typer

from ecom_cli import __version__


def version() -> None:
    """Print the version of the ecom CLI."""
    typer.echo(f"ecom {__version__}")
