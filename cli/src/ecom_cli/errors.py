"""One error handler for every `ecom` command: an expected failure is a one-line message on stderr and a
non-zero exit, never a traceback (ECOM_DEBUG=1 shows the traceback of an unexpected one)."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from typer.core import TyperGroup

from servicekit.errors import ServiceError

DEBUG_VARIABLE = "ECOM_DEBUG"
INTERRUPTED_EXIT = 130


class CommandError(Exception):
    """A command could not do what was asked; the message says why and what to do."""


def message_for(exc: BaseException) -> str:
    """What to tell the operator about an error a command met."""
    if isinstance(exc, ServiceError):
        return f"{exc.title}: {exc.detail}" if exc.detail else exc.title
    if isinstance(exc, OperationalError | ProgrammingError):
        text = str(exc.orig) if exc.orig is not None else str(exc)
        if "no such table" in text or "does not exist" in text:
            return f"the database is not migrated ({text}); run `ecom migrate` first"
        return f"database error: {text}"
    if isinstance(exc, DBAPIError):
        return f"database error: {exc.orig if exc.orig is not None else exc}"
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"cannot connect: {exc}"
    text = str(exc)
    return (
        text
        if isinstance(exc, CommandError | ValueError | OSError) and text
        else f"{type(exc).__name__}: {text}"
    )


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


class HandledGroup(TyperGroup):
    """The `ecom` group: runs the chosen command and turns what it raises into a message and an exit
    code (Typer's own exits, usage errors and aborts pass through untouched)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            Console(stderr=True, highlight=False).print("interrupted")
            raise typer.Exit(INTERRUPTED_EXIT) from None
        except Exception as exc:
            if _is_click_exception(exc) or debugging():
                raise
            console = Console(stderr=True, highlight=False, soft_wrap=True)
            console.print(Text("error: ", style="red") + Text(message_for(exc)))
            if not isinstance(exc, CommandError | ServiceError | ValueError | OSError | DBAPIError):
                console.print(f"(an unexpected error; run with {DEBUG_VARIABLE}=1 to see the traceback)")
            raise typer.Exit(1) from None


def _is_click_exception(exc: BaseException) -> bool:
    """Usage errors and the like, which Typer reports itself (its click is vendored)."""
    return any(cls.__name__ in {"ClickException", "Exit", "Abort"} for cls in type(exc).__mro__)
