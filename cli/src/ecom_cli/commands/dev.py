"""`ecom dev`: the broker, the migrations, the gateway and the four services, in one terminal."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ecom_cli.migrations import report_migrations, run_migrations
from ecom_cli.options import HostOption, VarDirOption
from ecom_cli.stack import (
    BROKER,
    DEFAULT_HOST,
    DEFAULT_PORTS,
    DEFAULT_VAR_DIR,
    GATEWAY,
    REFERENCE_CHANNEL,
    STACK,
    SYNC_CLIENT_FILE_VAR,
    base_url,
    broker_data_dir,
    broker_log_path,
    reference_channel_command,
    reference_channel_env,
    service_env,
    sync_client_path,
    uvicorn_command,
)
from ecom_cli.supervisor import ChildSpec, Supervisor, describe_exit

if TYPE_CHECKING:
    from servicekit.broker import EmbeddedBroker

BROKER_STORAGE = "broker-s3"

_PORT_OF = {
    BROKER: "the embedded Kafka broker",
    "gateway": "the gateway",
    "customer": "customer-service",
    "product": "product-service",
    "sync": "sync-service",
    "analytics": "analytics-service",
    REFERENCE_CHANNEL: "the reference sales channel (the seeded push channels point at it)",
}


def _port_option(name: str) -> Any:
    return typer.Option(f"--{name}-port", min=1, max=65535, help=f"Port of {_PORT_OF[name]}.")


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_problems(host: str, ports: Mapping[str, int]) -> list[str]:
    """Why the stack cannot listen on `ports`: a port given twice or already taken."""
    problems: list[str] = []
    owners: dict[int, str] = {}
    for name, port in ports.items():
        if port in owners:
            problems.append(f"{name} and {owners[port]} both want port {port}")
        elif port_in_use(host, port):
            problems.append(
                f"port {port} ({name}) on {host} is already in use; pick another with --{name}-port"
            )
        owners.setdefault(port, name)
    return problems


def urls_table(host: str, ports: Mapping[str, int], bootstrap_servers: str, var_dir: Path) -> Table:
    table = Table(title="Ecom dev stack", caption=f"data in {var_dir}  ·  Ctrl-C stops everything")
    table.add_column("process")
    table.add_column("URL")
    table.add_column("docs / log")
    for service in STACK:
        url = base_url(host, ports[service.name])
        table.add_row(Text(service.name, style=service.colour), url, f"{url}/docs")
    reference = base_url(host, ports[REFERENCE_CHANNEL])
    table.add_row(Text(REFERENCE_CHANNEL, style="white"), reference, f"{reference}/docs")
    table.add_row(Text(BROKER, style="red"), bootstrap_servers, str(broker_log_path(var_dir)))
    return table


def seed_empty_databases(var_dir: Path, env: dict[str, str], supervisor: Supervisor) -> bool:
    """Run `ecom seed --if-empty` in a child process (the services' code stays out of this one)."""
    command = [sys.executable, "-m", "ecom_cli", "seed", "--if-empty", "--var-dir", str(var_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    for line in (result.stdout + result.stderr).splitlines():
        if line.strip():
            supervisor.say(line, style="" if result.returncode == 0 else "red")
    if result.returncode != 0:
        supervisor.say(f"seeding failed ({describe_exit(result.returncode)})", style="bold red")
        return False
    return True


class BrokerStorage(StrEnum):
    disk = "disk"
    memory = "memory"


def make_broker(
    var_dir: Path, host: str, port: int, *, storage: BrokerStorage, log: IO[bytes] | None = None
) -> EmbeddedBroker:
    """The dev stack's broker: its data under `var_dir/broker` (disk) or in memory."""
    from servicekit.broker import EmbeddedBroker

    data_dir = broker_data_dir(var_dir) if storage is BrokerStorage.disk else None
    return EmbeddedBroker(port, host, log=log, data_dir=data_dir)


def run_dev(
    *,
    host: str,
    ports: Mapping[str, int],
    var_dir: Path,
    ready_timeout: float,
    grace_period: float,
    console: Console,
    seed_if_empty: bool = True,
    broker_storage: BrokerStorage = BrokerStorage.disk,
) -> int:
    """Run the whole stack until Ctrl-C, SIGTERM or the death of a process; returns the exit code.

    `ports` maps each stack service's name and "broker" to a port.
    """
    supervisor = Supervisor(
        console, grace_period=grace_period, prefix_width=max(map(len, [*ports, BROKER_STORAGE]))
    )
    problems = port_problems(host, ports)
    for problem in problems:
        supervisor.say(problem, style="bold red")
    if problems:
        return 1
    var_dir = var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)

    # Importing servicekit loads the whole service framework: pay for it only when the stack starts.
    from servicekit.broker import BrokerStartError

    with supervisor.handling_signals(), supervisor:
        try:
            with broker_log_path(var_dir).open("ab") as broker_log:
                broker = make_broker(
                    var_dir, host, ports[BROKER], storage=broker_storage, log=broker_log
                ).start()
        except BrokerStartError as error:
            supervisor.say(str(error), style="bold red")
            return 1
        assert broker.process is not None
        if broker.storage is not None:
            assert broker.storage.process is not None
            # Below the broker: stopped after it, so the broker's last writes reach the disk.
            supervisor.adopt(BROKER_STORAGE, broker.storage.process, colour="red", layer=-1)
        supervisor.adopt(BROKER, broker.process, colour="red", layer=0)
        kept = f", data in {broker.data_dir}" if broker.data_dir is not None else ", in memory"
        supervisor.say(f"broker listening on {broker.bootstrap_servers}{kept}")
        if supervisor.stop_requested:
            return 0

        env_for = partial(
            service_env,
            var_dir=var_dir,
            host=host,
            gateway_port=ports[GATEWAY.name],
            bootstrap_servers=broker.bootstrap_servers,
            ports=ports,
            fetch_max_wait_ms=broker.fetch_max_wait_ms,
        )
        results = run_migrations(STACK, env_for, should_stop=lambda: supervisor.stop_requested)
        if supervisor.stop_requested:
            return 0
        if not report_migrations(console, results):
            return 1
        reference_env = reference_channel_env(var_dir, host, ports[REFERENCE_CHANNEL])
        seed_env = env_for(GATEWAY) | {
            k: v for k, v in reference_env.items() if k.endswith(("_URL", "_FILE"))
        }
        seed_env[SYNC_CLIENT_FILE_VAR] = str(sync_client_path(var_dir))
        if seed_if_empty and not seed_empty_databases(var_dir, seed_env, supervisor):
            return 1
        if supervisor.stop_requested:
            return 0

        specs = [
            ChildSpec(
                name=service.name,
                argv=uvicorn_command(service, host=host, port=ports[service.name]),
                env=env_for(service),
                ready_url=f"{base_url(host, ports[service.name])}/readyz",
                colour=service.colour,
                layer=1,  # stopped before the broker they use
            )
            for service in STACK
        ]
        specs.append(
            ChildSpec(
                name=REFERENCE_CHANNEL,
                argv=reference_channel_command(host=host, port=ports[REFERENCE_CHANNEL]),
                env=reference_env,
                ready_url=f"{base_url(host, ports[REFERENCE_CHANNEL])}/healthz",
                colour="white",
                layer=1,
            )
        )
        exit_code: int = supervisor.run(
            specs,
            ready_timeout=ready_timeout,
            on_ready=lambda: supervisor.print(urls_table(host, ports, broker.bootstrap_servers, var_dir)),
        )
        return exit_code


def dev(
    host: HostOption = DEFAULT_HOST,
    gateway_port: Annotated[int, _port_option("gateway")] = DEFAULT_PORTS["gateway"],
    customer_port: Annotated[int, _port_option("customer")] = DEFAULT_PORTS["customer"],
    product_port: Annotated[int, _port_option("product")] = DEFAULT_PORTS["product"],
    sync_port: Annotated[int, _port_option("sync")] = DEFAULT_PORTS["sync"],
    analytics_port: Annotated[int, _port_option("analytics")] = DEFAULT_PORTS["analytics"],
    broker_port: Annotated[int, _port_option(BROKER)] = DEFAULT_PORTS[BROKER],
    reference_channel_port: Annotated[int, _port_option(REFERENCE_CHANNEL)] = DEFAULT_PORTS[
        REFERENCE_CHANNEL
    ],
    var_dir: VarDirOption = DEFAULT_VAR_DIR,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for every /readyz to answer 200.")
    ] = 60.0,
    grace_period: Annotated[
        float,
        typer.Option("--grace-period", min=0, help="Seconds each process gets to stop before SIGKILL."),
    ] = 10.0,
    seed: Annotated[
        bool, typer.Option("--seed/--no-seed", help="Seed the databases that are still empty (first start).")
    ] = True,
    broker_storage: Annotated[
        BrokerStorage,
        typer.Option(
            "--broker-storage",
            help="disk: the broker keeps topics and consumer offsets under VAR_DIR/broker across restarts; "
            "memory: everything is lost when it stops.",
        ),
    ] = BrokerStorage.disk,
) -> None:
    """Run the broker, the gateway, the four services and the reference sales channel with migrated
    databases, logs in one stream.

    Ctrl-C (or SIGTERM) stops everything; if any process dies, the rest are stopped and the exit code is 1.
    """
    ports = {
        BROKER: broker_port,
        "gateway": gateway_port,
        "customer": customer_port,
        "product": product_port,
        "sync": sync_port,
        "analytics": analytics_port,
        REFERENCE_CHANNEL: reference_channel_port,
    }
    code = run_dev(
        host=host,
        ports=ports,
        var_dir=var_dir,
        ready_timeout=timeout,
        grace_period=grace_period,
        console=Console(highlight=False),
        seed_if_empty=seed,
        broker_storage=broker_storage,
    )
    raise typer.Exit(code)
