"""The stack definition, the migration runner and the commands' own checks."""

from __future__ import annotations

import io
import socket
import sys
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from ecom_cli import __version__
from ecom_cli.commands.dev import port_problems, run_dev
from ecom_cli.main import app
from ecom_cli.migrations import report_migrations, run_migrations
from ecom_cli.stack import (
    DEFAULT_PORTS,
    HTTP_PROTOCOL,
    SERVICE_KEEP_ALIVE_SECONDS,
    STACK,
    StackService,
    service_env,
    service_named,
    uvicorn_command,
)
from gateway.config import Settings as GatewaySettings
from servicekit.broker import free_port

runner = CliRunner()


def test_stack_is_the_gateway_and_four_services_on_their_default_ports() -> None:
    assert [(s.name, s.package, s.port, s.env_prefix) for s in STACK] == [
        ("gateway", "gateway", 8000, "GATEWAY_"),
        ("customer", "customer_service", 8001, "CUSTOMER_"),
        ("product", "product_service", 8002, "PRODUCT_"),
        ("sync", "sync_service", 8003, "SYNC_"),
        ("analytics", "analytics_service", 8004, "ANALYTICS_"),
    ]
    assert DEFAULT_PORTS["broker"] == 9092


def test_service_env_wires_a_service_to_the_stack(tmp_path: Path) -> None:
    env = service_env(
        service_named("customer"),
        var_dir=tmp_path,
        host="127.0.0.1",
        gateway_port=9000,
        bootstrap_servers="127.0.0.1:9999",
        base_env={"PATH": "/bin"},
    )
    assert env == {
        "PATH": "/bin",
        "CUSTOMER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path.resolve()}/customer.db",
        "ENVIRONMENT": "development",
        "CUSTOMER_JWKS_URL": "http://127.0.0.1:9000/.well-known/jwks.json",
        "CUSTOMER_JWT_ISSUER": "http://127.0.0.1:9000",
        "CUSTOMER_REVOCATIONS_URL": "http://127.0.0.1:9000/.well-known/revocations.json",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9999",
        "KAFKA_SESSION_TIMEOUT_MS": "3000",
        "PYTHONUNBUFFERED": "1",
    }


def test_analytics_is_told_where_product_service_listens(tmp_path: Path) -> None:
    env = service_env(
        service_named("analytics"), var_dir=tmp_path, base_env={}, ports={"product": 8142, "analytics": 8144}
    )
    assert env["ANALYTICS_PRODUCT_SERVICE_URL"] == "http://127.0.0.1:8142"


def test_the_dev_stack_refits_analytics_models_on_a_schedule_unless_told_otherwise(tmp_path: Path) -> None:
    analytics = service_named("analytics")
    env = service_env(analytics, var_dir=tmp_path, base_env={})
    assert env["ANALYTICS_MODEL_REFIT_INTERVAL_S"] == "600"
    assert env["ANALYTICS_MODEL_REFIT_EMPTY_RETRY_S"] == "60"
    off = service_env(analytics, var_dir=tmp_path, base_env={"ANALYTICS_MODEL_REFIT_INTERVAL_S": "0"})
    assert off["ANALYTICS_MODEL_REFIT_INTERVAL_S"] == "0"
    assert "ANALYTICS_MODEL_REFIT_INTERVAL_S" not in service_env(
        service_named("product"), var_dir=tmp_path, base_env={}
    )


def test_service_env_gives_consumers_the_fetch_wait_of_the_broker(tmp_path: Path) -> None:
    customer = service_named("customer")
    durable = service_env(
        customer, var_dir=tmp_path, bootstrap_servers="b:1", fetch_max_wait_ms=1000, base_env={}
    )
    assert durable["KAFKA_FETCH_MAX_WAIT_MS"] == "1000"
    mine = {"KAFKA_FETCH_MAX_WAIT_MS": "250"}  # the caller's own setting wins
    assert (
        service_env(
            customer, var_dir=tmp_path, bootstrap_servers="b:1", fetch_max_wait_ms=1000, base_env=mine
        )["KAFKA_FETCH_MAX_WAIT_MS"]
        == "250"
    )


def test_database_url_and_environment_from_the_caller_win(tmp_path: Path) -> None:
    base = {"PRODUCT_DATABASE_URL": "postgresql+asyncpg://db/product", "ENVIRONMENT": "test"}
    env = service_env(service_named("product"), var_dir=tmp_path, base_env=base)
    assert env["PRODUCT_DATABASE_URL"] == "postgresql+asyncpg://db/product"
    assert env["ENVIRONMENT"] == "test"


def test_uvicorn_command_serves_the_package_app() -> None:
    command = uvicorn_command(service_named("sync"), host="127.0.0.1", port=8103)
    assert command == [
        sys.executable,
        "-m",
        "uvicorn",
        "sync_service.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        "8103",
        "--no-access-log",
        "--http",
        HTTP_PROTOCOL,
        "--timeout-keep-alive",
        str(SERVICE_KEEP_ALIVE_SECONDS),
        "--no-proxy-headers",
    ]


def test_the_gateway_drops_idle_upstream_connections_before_the_services_close_them() -> None:
    assert GatewaySettings().upstream_idle_timeout_seconds < SERVICE_KEEP_ALIVE_SECONDS


def test_port_problems_name_a_busy_port_and_a_port_given_twice() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        shared = free_port()
        problems = port_problems("127.0.0.1", {"customer": busy_port, "sync": shared, "analytics": shared})
    assert problems == [
        f"port {busy_port} (customer) on 127.0.0.1 is already in use; pick another with --customer-port",
        f"analytics and sync both want port {shared}",
    ]


def test_dev_refuses_to_start_on_a_busy_port(tmp_path: Path) -> None:
    out = io.StringIO()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {name: free_port() for name in DEFAULT_PORTS} | {"gateway": busy.getsockname()[1]}
        code = run_dev(
            host="127.0.0.1",
            ports=ports,
            var_dir=tmp_path / "var",
            ready_timeout=5,
            grace_period=1,
            console=Console(file=out, width=200),
        )
    assert code == 1
    assert "(gateway) on 127.0.0.1 is already in use" in out.getvalue()


def test_failing_migration_is_reported_by_name(tmp_path: Path) -> None:
    ghost = StackService("ghost", "ghost_service_that_does_not_exist", 8999, "GHOST_", "red")
    results = run_migrations([ghost], lambda service: service_env(service, var_dir=tmp_path))
    out = io.StringIO()
    assert not report_migrations(Console(file=out, width=200), results)
    report = out.getvalue()
    assert "ghost | ModuleNotFoundError: No module named 'ghost_service_that_does_not_exist'" in report
    assert "ghost | migration failed (exit code 1)" in report


def test_version_prints_the_cli_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ecom {__version__}"


def test_migrate_rejects_an_unknown_service() -> None:
    result = runner.invoke(app, ["migrate", "nope"])
    assert result.exit_code == 2
    assert "unknown service 'nope'" in result.output


def test_dev_offers_every_port_option() -> None:
    result = runner.invoke(app, ["dev", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--host", "--var-dir", "--timeout", "--grace-period"):
        assert option in result.output
    for name in DEFAULT_PORTS:
        assert f"--{name}-port" in result.output
