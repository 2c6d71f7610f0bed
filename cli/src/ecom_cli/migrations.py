"""Run every service's migrations, each in its own process, all at once."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

from ecom_cli.stack import StackService
from ecom_cli.supervisor import describe_exit

OUTPUT_TAIL_LINES = 40


@dataclass(frozen=True)
class MigrationResult:
    service: StackService
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def migration_command(service: StackService) -> list[str]:
    return [sys.executable, "-m", "ecom_cli.migrate_worker", service.package, service.database_url_var]


def run_migrations(
    services: Sequence[StackService],
    env_for: Callable[[StackService], dict[str, str]],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    poll_interval: float = 0.1,
) -> list[MigrationResult]:
    """Upgrade each service's database to head; one result per service, in order.

    When `should_stop` turns true, the migrations still running are terminated.
    """
    processes: list[tuple[StackService, subprocess.Popen[bytes]]] = []
    results: list[MigrationResult] = []
    try:
        for service in services:
            process = subprocess.Popen(
                migration_command(service),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env_for(service),
                start_new_session=True,
            )
            processes.append((service, process))
        for service, process in processes:
            terminated = False
            while True:
                if not terminated and should_stop():
                    process.send_signal(signal.SIGTERM)
                    terminated = True
                try:
                    output, _ = process.communicate(timeout=poll_interval)
                    break
                except subprocess.TimeoutExpired:
                    continue
            results.append(MigrationResult(service, process.returncode, output.decode("utf-8", "replace")))
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def report_migrations(console: Console, results: Sequence[MigrationResult]) -> bool:
    """Print one line per service (and the end of a failing one's output); True if all succeeded."""
    width = max((len(result.service.name) for result in results), default=0)
    for result in results:
        name = f"{result.service.name:<{width}} | "
        if result.ok:
            console.print(Text.assemble((name, result.service.colour), ("migrated", "green")))
            continue
        for line in result.output.rstrip().splitlines()[-OUTPUT_TAIL_LINES:]:
            console.print(Text.assemble((name, result.service.colour), line), soft_wrap=True)
        console.print(
            Text.assemble(
                (name, result.service.colour),
                (f"migration failed ({describe_exit(result.returncode)})", "bold red"),
            )
        )
    return all(result.ok for result in results)
