"""Smoke test of the images `make images` builds: the gateway and customer-service images run with
`docker run` against the host's PostgreSQL and the embedded broker, migrate, and answer /readyz.

Skipped when no Docker engine answers or the images are not built (CI has no engine); run
`make images` with dockerd started, then `pytest tests/deploy/test_images.py`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from servicekit.broker import EmbeddedBroker, free_port
from servicekit.testing.databases import scratch_postgres_database

ENGINE = os.environ.get("CONTAINER_ENGINE", "docker")
TAG = os.environ.get("TAG", "latest")
POSTGRES = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
READY_TIMEOUT = 90.0


def _engine(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ENGINE, *args], capture_output=True, text=True, timeout=timeout, check=False)


def _engine_answers() -> bool:
    return shutil.which(ENGINE) is not None and _engine("version", timeout=15).returncode == 0


pytestmark = pytest.mark.skipif(not _engine_answers(), reason=f"no container engine answers ({ENGINE})")


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    wanted = {name: f"ecom/{name}:{TAG}" for name in ("gateway", "customer")}
    missing = [image for image in wanted.values() if _engine("image", "inspect", image).returncode != 0]
    if missing:
        pytest.skip(f"images not built (make images): {missing}")
    return wanted


@pytest.fixture(scope="module")
def databases() -> Iterator[dict[str, str]]:
    """A scratch PostgreSQL database per service on the host's server, dropped afterwards."""
    loop = asyncio.new_event_loop()
    contexts = {
        name: scratch_postgres_database(POSTGRES, f"smoke_{name}") for name in ("gateway", "customer")
    }
    try:
        urls = {name: loop.run_until_complete(ctx.__aenter__()) for name, ctx in contexts.items()}
        yield urls
    finally:
        for ctx in contexts.values():
            loop.run_until_complete(ctx.__aexit__(None, None, None))
        loop.close()


def _run(
    image: str, env: dict[str, str], *args: str, detach: bool = False
) -> subprocess.CompletedProcess[str]:
    flags = [
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ]
    env_flags = [flag for key, value in env.items() for flag in ("-e", f"{key}={value}")]
    mode = ["-d"] if detach else ["--rm"]
    return _engine("run", *mode, *flags, *env_flags, image, *args, timeout=180)


def test_gateway_and_customer_images_migrate_and_become_ready(
    images: dict[str, str], databases: dict[str, str]
) -> None:
    gateway_port, customer_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    with ExitStack() as stack:
        broker = stack.enter_context(EmbeddedBroker())
        common = {
            "ENVIRONMENT": "production",
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_SESSION_TIMEOUT_MS": "3000",
            "KAFKA_FETCH_MAX_WAIT_MS": "20",
        }
        gateway_env = common | {
            "PORT": str(gateway_port),
            "GATEWAY_DATABASE_URL": databases["gateway"],
            "GATEWAY_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
            "GATEWAY_JWT_ISSUER": gateway_url,
            "GATEWAY_CUSTOMER_URL": f"http://127.0.0.1:{customer_port}",
        }
        customer_env = common | {
            "PORT": str(customer_port),
            "CUSTOMER_DATABASE_URL": databases["customer"],
            "CUSTOMER_MASTER_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
            "CUSTOMER_BLIND_INDEX_KEY": secrets.token_urlsafe(32),
            "CUSTOMER_JWT_ISSUER": gateway_url,
            "CUSTOMER_JWKS_URL": f"{gateway_url}/.well-known/jwks.json",
            "CUSTOMER_REVOCATIONS_URL": f"{gateway_url}/.well-known/revocations.json",
        }
        started = time.monotonic()
        for name, env in (("gateway", gateway_env), ("customer", customer_env)):
            migrated = _run(images[name], env, "migrate")
            assert migrated.returncode == 0, migrated.stderr
            assert f"{name}: database at the latest migration" in migrated.stdout
        containers = {}
        for name, env in (("gateway", gateway_env), ("customer", customer_env)):
            result = _run(images[name], env, detach=True)
            assert result.returncode == 0, result.stderr
            containers[name] = result.stdout.strip()
            stack.callback(_engine, "rm", "-f", containers[name])

        urls = {"gateway": gateway_url, "customer": f"http://127.0.0.1:{customer_port}"}
        ready: dict[str, int] = {}
        with httpx.Client(timeout=3) as http:
            deadline = time.monotonic() + READY_TIMEOUT
            while len(ready) < len(urls) and time.monotonic() < deadline:
                for name, url in urls.items():
                    try:
                        if http.get(f"{url}/readyz").status_code == 200:
                            ready[name] = 200
                    except httpx.HTTPError:
                        pass
                time.sleep(0.5)
            logs = {name: _engine("logs", cid).stderr[-2000:] for name, cid in containers.items()}
            assert ready == {"gateway": 200, "customer": 200}, logs
            print(f"\nmigrated and ready in {time.monotonic() - started:.1f}s")
            # The image's own HEALTHCHECK runs the same probe inside the container.
            health = _engine("exec", containers["customer"], "ecom-entrypoint", "healthcheck")
            assert health.returncode == 0, health.stderr
            # Non-root, and the root filesystem is read-only.
            assert _engine("exec", containers["gateway"], "id", "-u").stdout.strip() == "10001"
            assert _engine("exec", containers["gateway"], "touch", "/app/x").returncode != 0
