"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

VarDirOption = Annotated[
    Path,
    typer.Option("--var-dir", help="Where the SQLite databases and the broker log live.", file_okay=False),
]
HostOption = Annotated[str, typer.Option("--host", help="Interface every process listens on.")]
