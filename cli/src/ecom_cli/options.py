"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

VarDirOption = Annotated[
    Path,
    typer.Option(
        "--var-dir", help="Where the SQLite databases, the broker's data and its log live.", file_okay=False
    ),
]
HostOption = Annotated[str, typer.Option("--host", help="Interface every process listens on.")]
