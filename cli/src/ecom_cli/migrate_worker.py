"""Migrate one service: `python -m ecom_cli.migrate_worker <package> <DATABASE_URL variable>`.

Each service migrates in a process of its own, so Alembic's event loop and logging set-up touch
nothing else. The database URL is read from the environment so it never shows up in `ps`.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m ecom_cli.migrate_worker <package> <DATABASE_URL variable>", file=sys.stderr)
        return 2
    package, url_variable = argv
    database_url = os.environ.get(url_variable)
    if not database_url:
        print(f"{url_variable} is not set", file=sys.stderr)
        return 2
    config = importlib.import_module(f"{package}.config")
    from ecom_cli.errors import DEBUG_VARIABLE, debugging, message_for
    from servicekit.migrations import upgrade  # after the service, so a wrong package fails fast

    try:
        upgrade(Path(config.ALEMBIC_INI), database_url)
    except Exception as exc:
        if debugging():
            raise
        print(f"error: {message_for(exc)} (set {DEBUG_VARIABLE}=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
