"""deploy/postgres/init-databases.sh (compose's PostgreSQL init script), run in a throwaway
PostgreSQL cluster: each service gets a database it owns and can migrate, reached only with its own
password, and cannot connect to another service's database."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from deploychecks import DEPLOY

from customer_service.config import ALEMBIC_INI as CUSTOMER_ALEMBIC_INI
from servicekit.broker import free_port
from servicekit.migrations import upgrade

SCRIPT = DEPLOY / "postgres" / "init-databases.sh"
SERVICES = ("gateway", "customer", "product", "sync", "analytics")
PASSWORDS = {name: f"{name}-secret-pw" for name in SERVICES}
BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)

pytestmark = pytest.mark.skipif(
    BIN is None or os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="needs PostgreSQL's server binaries and root (to run them as the postgres user)",
)


def _as_postgres(*command: str) -> None:
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


@contextmanager
def scratch_cluster() -> Iterator[tuple[Path, int]]:
    """A new PostgreSQL server: trust on its socket (as the image's init scripts run), passwords on TCP.
    Its folder is outside pytest's (root-only) temporary tree so the postgres user can reach it."""
    root = Path(tempfile.mkdtemp(prefix="ecom-pg-init-"))
    data, socket_dir = root / "data", root / "run"
    socket_dir.mkdir()
    shutil.chown(root, "postgres")
    shutil.chown(socket_dir, "postgres")
    port = free_port()
    assert BIN is not None
    _as_postgres(
        str(BIN / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
    )
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    # -l: the server writes to a file, not to this process's pipes (which would never close).
    _as_postgres(
        str(BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "start"
    )
    try:
        yield socket_dir, port
    finally:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _run_init(script: Path, socket_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PGHOST=str(socket_dir), PGPORT=str(port), POSTGRES_USER="postgres")
    env.update({f"{name.upper()}_DB_PASSWORD": password for name, password in PASSWORDS.items()})
    return subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def _isolation_problems(port: int) -> list[str]:
    problems = []
    for name in SERVICES:
        try:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=port, user=name, password=PASSWORDS[name], database=name
            )
            await conn.execute("CREATE TABLE owned_here (id int)")
            await conn.close()
        except asyncpg.PostgresError as error:
            problems.append(f"{name} cannot use its own database: {error}")
        for other in SERVICES:
            if other == name:
                continue
            try:
                conn = await asyncpg.connect(
                    host="127.0.0.1", port=port, user=name, password=PASSWORDS[name], database=other
                )
                await conn.close()
                problems.append(f"{name} can connect to {other}'s database")
            except asyncpg.InsufficientPrivilegeError:
                pass
        try:
            await asyncpg.connect(host="127.0.0.1", port=port, user=name, password="wrong", database=name)
            problems.append(f"{name} connects with a wrong password")
        except asyncpg.InvalidPasswordError:
            pass
    return problems


@pytest.fixture(scope="module")
def initialised() -> Iterator[int]:
    """A cluster the real init script has run in; yields its TCP port."""
    with scratch_cluster() as (socket_dir, port):
        result = _run_init(SCRIPT, socket_dir, port)
        assert result.returncode == 0, result.stderr
        yield port


def test_each_service_owns_its_database_and_no_other(initialised: int) -> None:
    assert asyncio.run(_isolation_problems(initialised)) == []


def test_a_service_role_can_run_its_migrations(initialised: int) -> None:
    port = initialised
    url = f"postgresql+asyncpg://customer:{PASSWORDS['customer']}@127.0.0.1:{port}/customer"
    upgrade(CUSTOMER_ALEMBIC_INI, url)

    async def tables() -> int:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user="customer", password=PASSWORDS["customer"], database="customer"
        )
        try:
            return int(await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
        finally:
            await conn.close()

    assert asyncio.run(tables()) > 5


def test_isolation_check_fails_when_the_script_leaves_databases_open(tmp_path: Path) -> None:
    broken = tmp_path / "init-databases.sh"
    broken.write_text(SCRIPT.read_text().replace('REVOKE ALL ON DATABASE :"name" FROM PUBLIC;\n', ""))
    with scratch_cluster() as (socket_dir, port):
        assert _run_init(broken, socket_dir, port).returncode == 0
        assert "customer can connect to product's database" in asyncio.run(_isolation_problems(port))


def test_init_refuses_an_empty_password_before_creating_anything(tmp_path: Path) -> None:
    # Only analytics' password is missing: the script must stop before its first psql (no server here).
    env = dict(os.environ, PGHOST=str(tmp_path), PGPORT="1", POSTGRES_USER="postgres")
    env.update({f"{name.upper()}_DB_PASSWORD": password for name, password in PASSWORDS.items()})
    env["ANALYTICS_DB_PASSWORD"] = ""
    result = subprocess.run(
        ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "init-databases: analytics's password is empty"
