"""Fail loudly when the PostgreSQL server for `make test-pg` cannot be reached."""

import asyncio
import sys

import asyncpg
from sqlalchemy.engine import make_url

from servicekit.db import asyncpg_dsn


async def main(url: str) -> int:
    try:
        conn = await asyncio.wait_for(asyncpg.connect(asyncpg_dsn(url)), 10)
    except Exception as exc:
        print(f"error: PostgreSQL at {url} is not reachable: {exc}", file=sys.stderr)
        return 1
    version = await conn.fetchval("SHOW server_version")
    await conn.close()
    print(f"PostgreSQL {version} reachable at {make_url(url).render_as_string(hide_password=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
