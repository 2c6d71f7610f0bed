"""Every metric an alert rule or a dashboard uses is exported by a running service.

`ecom dev` starts the real gateway and the four services (and the embedded broker) on free ports;
their live /metrics pages and OpenAPI documents are compared with the selectors of every rule and
panel: the metric must be exported by the service a `job` matcher names, and a `route` matcher must
name one of its routes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from deploychecks import (
    DASHBOARDS,
    JOBS,
    ROOT,
    RULES,
    exposed_names,
    missing_metric_problems,
    used_selectors,
)

from servicekit.broker import free_port

START_TIMEOUT = 120.0


@dataclass(frozen=True)
class LiveServices:
    metrics: dict[str, set[str]]
    routes: dict[str, set[str]]


def _wait_ready(urls: dict[str, str], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = dict(urls)
    with httpx.Client(timeout=2) as http:
        while pending and time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"ecom dev exited with {process.returncode}")
            for job, url in list(pending.items()):
                try:
                    if http.get(f"{url}/readyz").status_code == 200:
                        del pending[job]
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
    if pending:
        raise RuntimeError(f"not ready within {START_TIMEOUT:.0f}s: {sorted(pending)}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServices]:
    ports = {job: free_port() for job in JOBS}
    var_dir = tmp_path_factory.mktemp("stack")
    command = [
        sys.executable,
        "-m",
        "ecom_cli",
        "dev",
        "--var-dir",
        str(var_dir),
        "--broker-port",
        str(free_port()),
        "--reference-channel-port",
        str(free_port()),
    ]
    command += [arg for job, port in ports.items() for arg in (f"--{job}-port", str(port))]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    log = (var_dir / "dev.log").open("wb")
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    urls = {job: f"http://127.0.0.1:{port}" for job, port in ports.items()}
    try:
        try:
            _wait_ready(urls, process)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{(var_dir / 'dev.log').read_text()[-3000:]}") from None
        with httpx.Client(timeout=10) as http:
            metrics = {job: exposed_names(http.get(f"{url}/metrics").text) for job, url in urls.items()}
            routes = {job: set(http.get(f"{url}/openapi.json").json()["paths"]) for job, url in urls.items()}
        yield LiveServices(metrics, routes)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()


def test_every_service_exports_the_http_and_event_metrics(live: LiveServices) -> None:
    for job in JOBS:
        assert {
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            "outbox_backlog",
            "consumer_lag",
            "events_dead_lettered_total",
        } <= live.metrics[job], job


def test_rules_and_dashboards_use_only_exported_metrics(live: LiveServices) -> None:
    used = used_selectors(RULES, DASHBOARDS)
    assert len(used) > 20
    assert missing_metric_problems(used, live.metrics, live.routes) == []


def test_check_fails_on_a_rule_using_a_metric_no_service_exports(live: LiveServices, tmp_path: Path) -> None:
    rules = tmp_path / "broken.yml"
    rules.write_text(RULES[0].read_text().replace("outbox_backlog > 500", "outbox_rows_pending > 500", 1))
    problems = missing_metric_problems(used_selectors([rules], []), live.metrics, live.routes)
    assert (
        "broken.yml:OutboxBacklogGrowing: outbox_rows_pending is exported by no running service" in problems
    )


def test_check_fails_on_a_route_the_service_does_not_have(live: LiveServices, tmp_path: Path) -> None:
    business = next(path for path in DASHBOARDS if path.name == "business.json")
    dashboard = tmp_path / "broken.json"
    dashboard.write_text(
        business.read_text().replace('route=\\"/v1/customers\\"', 'route=\\"/v1/customer\\"')
    )
    problems = missing_metric_problems(used_selectors([], [dashboard]), live.metrics, live.routes)
    assert "broken.json:Customers created per hour: customer has no route /v1/customer" in problems


def test_check_fails_on_a_dashboard_metric_of_another_service(live: LiveServices, tmp_path: Path) -> None:
    dashboard = tmp_path / "broken.json"
    dashboard.write_text(
        DASHBOARDS[0].read_text().replace("process_resident_memory_bytes", "sync_resync_jobs", 1)
    )
    problems = missing_metric_problems(used_selectors([], [dashboard]), live.metrics, live.routes)
    assert "broken.json:Resident memory: sync_resync_jobs is exported by no running service" in problems
