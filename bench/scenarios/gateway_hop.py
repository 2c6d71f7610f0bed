"""Gateway hop: added latency and throughput of calling a service through the gateway, against calling it
directly; and client-credentials tokens issued per second.

Three processes on 127.0.0.1: a service (servicekit's app factory with `/v1/whoami`, verifying tokens
against the gateway's JWKS and checking the gateway's revocation list, as deployed) and the real
gateway, each a uvicorn server in its own child process with the same server settings (uvicorn's
default loop and HTTP parser, uvloop and httptools here; access log off; log level WARNING; idle
connections kept KEEP_ALIVE_S), and this process as the load generator (one httpx client and
kept-alive connection per worker). Both paths send the same request with the same valid token; the
gateway verifies the token, checks the client's status, takes a rate-limit token (limit set out of
reach) and forwards it through its pooled client; the service verifies it again.

Each concurrency level runs the two modes in ABBA order (direct, gateway, gateway, direct) so a change
in the shared machine's load hits both alike; each mode is warmed up first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    child_process,
    cpu_seconds,
    gateway_database,
    percentile,
    ratio,
    summarize,
    wait_ready,
)

NAME = "gateway_hop"
DESCRIPTION = (
    "Latency (p50, p99) the gateway hop adds and throughput through it, against calling the service "
    "directly, at concurrency 1, 16 and 64; client-credentials tokens issued per second"
)
TIMEOUT_S = 900.0

START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0

KEEP_ALIVE_S = 60
"""Both servers keep idle connections this long (uvicorn's default is 5 s). At c=64 on a busy machine
the requests that open the load generator's connections can take seconds; a connection that answered
first then sat idle past 5 s was closed by the server just as a worker reused it ("Server disconnected
without sending a response"). Same setting for both servers."""

SERVICE_PROGRAM = f"""
import sys, uvicorn
from servicekit.app import create_service_app
from servicekit.routes import whoami_router
from servicekit.settings import ServiceSettings
port, gateway = int(sys.argv[1]), sys.argv[2]
settings = ServiceSettings(
    service_name="bench-service", database_url=sys.argv[3], kafka_enabled=False, log_level="WARNING",
    jwks_url=gateway + "/.well-known/jwks.json", jwt_issuer=gateway,
    revocations_url=gateway + "/.well-known/revocations.json",
)
app = create_service_app(settings, title="bench service", routers=[whoami_router()])
uvicorn.run(
    app, host="127.0.0.1", port=port, log_level="warning", access_log=False, timeout_keep_alive={KEEP_ALIVE_S}
)
"""


@dataclass(frozen=True)
class Parameters:
    requests_per_segment: dict[int, int]
    warmup_requests: int
    token_requests: int
    token_concurrency: tuple[int, ...] = (1, 16)
    rounds: int = 2


def parameters_for(quick: bool) -> Parameters:
    if quick:
        return Parameters({1: 300, 16: 600, 64: 600}, warmup_requests=100, token_requests=200)
    return Parameters({1: 2000, 16: 3000, 64: 3000}, warmup_requests=300, token_requests=1000)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    gateway_url: str
    service_url: str
    client_id: str
    client_secret: str
    gateway_pid: int
    service_pid: int


@contextlib.asynccontextmanager
async def running_stack(tmp: Path) -> AsyncIterator[Stack]:
    gateway_port, service_port = _free_port(), _free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    service_url = f"http://127.0.0.1:{service_port}"
    gateway_db = f"sqlite+aiosqlite:///{tmp / 'gateway.db'}"
    client_id, secret = await gateway_database(gateway_db, name="bench storefront", role="storefront")
    env = dict(os.environ)
    env.update(
        {
            "ENVIRONMENT": "development",
            "KAFKA_ENABLED": "false",
            "GATEWAY_DATABASE_URL": gateway_db,
            "GATEWAY_JWT_ISSUER": gateway_url,
            "GATEWAY_CUSTOMER_URL": service_url,
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_RATE_LIMIT_RATE_PER_SECOND": "1000000000",
            "GATEWAY_RATE_LIMIT_BURST": "1000000000",
            "GATEWAY_AUTH_RATE_LIMIT_RATE_PER_SECOND": "1000000000",
            "GATEWAY_AUTH_RATE_LIMIT_BURST": "1000000000",
        }
    )
    gateway_argv = [
        sys.executable, "-m", "uvicorn", "gateway.main:app", "--host", "127.0.0.1",
        "--port", str(gateway_port), "--no-access-log", "--log-level", "warning",
        "--timeout-keep-alive", str(KEEP_ALIVE_S),
    ]  # fmt: skip
    service_argv = [
        sys.executable, "-c", SERVICE_PROGRAM, str(service_port), gateway_url,
        f"sqlite+aiosqlite:///{tmp / 'service.db'}",
    ]  # fmt: skip
    with (
        child_process(gateway_argv, env, tmp / "gateway.log") as gateway,
        child_process(service_argv, env, tmp / "service.log") as service,
    ):
        await wait_ready(gateway_url, gateway, tmp / "gateway.log", START_TIMEOUT_S)
        await wait_ready(service_url, service, tmp / "service.log", START_TIMEOUT_S)
        yield Stack(gateway_url, service_url, client_id, secret, gateway.pid, service.pid)


async def _token(client: httpx.AsyncClient, stack: Stack) -> httpx.Response:
    basic = base64.b64encode(f"{stack.client_id}:{stack.client_secret}".encode()).decode()
    return await client.post(
        f"{stack.gateway_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )


@dataclass
class Segment:
    mode: str
    concurrency: int
    round: int
    latencies_ms: list[float]
    span_s: float
    gateway_cpu_s: float
    service_cpu_s: float

    @property
    def throughput_rps(self) -> float:
        return len(self.latencies_ms) / self.span_s


async def _load(
    url: str, headers: dict[str, str], *, requests: int, concurrency: int
) -> tuple[list[float], float]:
    """`concurrency` workers share `requests` GETs, each worker one at a time on its own kept-alive
    connection (its own httpx client: one shared pool of 64 connections cost the load generator more
    CPU per request than the service, httpcore's pool bookkeeping growing with its size)."""
    latencies: list[float] = []
    remaining = requests
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S))
            for _ in range(concurrency)
        ]

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                response = await client.get(url, headers=headers)
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")

        # connections opened before the clock starts
        await asyncio.gather(*(client.get(url, headers=headers) for client in clients))
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for client in clients))
        span = time.perf_counter() - began
    return latencies, span


async def _issue_tokens(stack: Stack, *, requests: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                response = await _token(client, stack)
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"token endpoint answered {response.status_code}: {response.text[:300]}"
                    )

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        span = time.perf_counter() - began
    return latencies, span


def _pool(segments: list[Segment], mode: str, concurrency: int) -> dict[str, Any]:
    mine = [s for s in segments if s.mode == mode and s.concurrency == concurrency]
    latencies = [value for s in mine for value in s.latencies_ms]
    return {
        "requests": len(latencies),
        "throughput_rps": len(latencies) / sum(s.span_s for s in mine),
        "latency_ms": summarize(latencies),
        "gateway_cpu_ms_per_request": sum(s.gateway_cpu_s for s in mine) * 1000 / len(latencies),
        "service_cpu_ms_per_request": sum(s.service_cpu_s for s in mine) * 1000 / len(latencies),
    }


async def run(quick: bool) -> dict[str, Any]:
    params = parameters_for(quick)
    segments: list[Segment] = []
    figures: dict[str, Any] = {"concurrency": {}, "tokens": {}}
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp_name:
        tmp = Path(tmp_name)
        async with running_stack(tmp) as stack, httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as setup:
            token_response = await _token(setup, stack)
            token_response.raise_for_status()
            headers = {"Authorization": f"Bearer {token_response.json()['access_token']}"}
            urls = {
                "direct": f"{stack.service_url}/v1/whoami",
                "gateway": f"{stack.gateway_url}/api/customers/v1/whoami",
            }
            for url in urls.values():
                await _load(url, headers, requests=params.warmup_requests, concurrency=4)
            for concurrency, total in params.requests_per_segment.items():
                per_segment = total // params.rounds
                for round_no in range(params.rounds):
                    order = ["direct", "gateway"] if round_no % 2 == 0 else ["gateway", "direct"]
                    for mode in order:
                        cpu_before = (cpu_seconds(stack.gateway_pid), cpu_seconds(stack.service_pid))
                        latencies, span = await _load(
                            urls[mode], headers, requests=per_segment, concurrency=concurrency
                        )
                        gateway_cpu = cpu_seconds(stack.gateway_pid) - cpu_before[0]
                        service_cpu = cpu_seconds(stack.service_pid) - cpu_before[1]
                        segments.append(
                            Segment(mode, concurrency, round_no, latencies, span, gateway_cpu, service_cpu)
                        )
                direct = _pool(segments, "direct", concurrency)
                through = _pool(segments, "gateway", concurrency)
                figures["concurrency"][str(concurrency)] = {
                    "direct": direct,
                    "gateway": through,
                    "added_latency_p50_ms": through["latency_ms"]["p50"] - direct["latency_ms"]["p50"],
                    "added_latency_p99_ms": through["latency_ms"]["p99"] - direct["latency_ms"]["p99"],
                    "throughput_ratio_gateway_over_direct": ratio(
                        through["throughput_rps"], direct["throughput_rps"]
                    ),
                }
            await _issue_tokens(stack, requests=params.warmup_requests // 2, concurrency=1)
            for concurrency in params.token_concurrency:
                latencies, span = await _issue_tokens(
                    stack, requests=params.token_requests, concurrency=concurrency
                )
                figures["tokens"][str(concurrency)] = {
                    "tokens": len(latencies),
                    "tokens_per_second": len(latencies) / span,
                    "latency_ms": summarize(latencies),
                }
    c1 = figures["concurrency"]["1"]
    headline = {
        "gateway CPU ms per proxied request (c=1)": c1["gateway"]["gateway_cpu_ms_per_request"],
        "service CPU ms per request (c=1)": c1["direct"]["service_cpu_ms_per_request"],
        "added p99 latency at c=1 (ms; goal < 2)": c1["added_latency_p99_ms"],
        "added p50 latency at c=1 (ms)": c1["added_latency_p50_ms"],
        **{
            f"throughput ratio gateway/direct at c={c} (goal >= 0.5)": figures["concurrency"][str(c)][
                "throughput_ratio_gateway_over_direct"
            ]
            for c in params.requests_per_segment
        },
        **{
            f"client-credentials tokens/s at c={c}": figures["tokens"][str(c)]["tokens_per_second"]
            for c in params.token_concurrency
        },
    }
    figures["segments"] = [
        {
            "mode": s.mode,
            "concurrency": s.concurrency,
            "round": s.round,
            "requests": len(s.latencies_ms),
            "throughput_rps": s.throughput_rps,
            "latency_p50_ms": percentile(s.latencies_ms, 50),
            "latency_p99_ms": percentile(s.latencies_ms, 99),
        }
        for s in segments
    ]
    rows = []
    for c, entry in figures["concurrency"].items():
        rows.append(
            [
                f"c={c}",
                entry["direct"]["latency_ms"]["p50"],
                entry["gateway"]["latency_ms"]["p50"],
                entry["direct"]["latency_ms"]["p99"],
                entry["gateway"]["latency_ms"]["p99"],
                entry["added_latency_p99_ms"],
                entry["direct"]["throughput_rps"],
                entry["gateway"]["throughput_rps"],
                entry["throughput_ratio_gateway_over_direct"],
            ]
        )
    return {
        "parameters": asdict(params)
        | {"requests_per_segment": {str(k): v for k, v in params.requests_per_segment.items()}},
        "headline": headline,
        "figures": figures,
        "notes": [
            "Service and gateway are uvicorn servers in two child processes; the load generator is this "
            "process (httpx, keep-alive). On a 2-core machine the three share the CPUs, so at high "
            "concurrency the gateway process competes with the service and the client: ratios matter "
            "more than absolutes.",
            "Added latency = gateway percentile - direct percentile, pooled over the ABBA rounds.",
            "CPU per request = the process's user+system CPU time (/proc) over a segment / its requests: "
            "what the hop costs independently of how loaded the machine was.",
            "Load generator (same for both modes): one httpx client per worker. Before, its shared "
            "64-connection pool and httpcore's failed `import sniffio` several times per request (sniffio "
            "is now a servicekit dependency) made it the bottleneck at c >= 16, which flattered the "
            "ratios. Both servers keep "
            "idle connections KEEP_ALIVE_S (60 s) so the warm-up connections are not closed under a "
            "worker at c=64.",
            "The service verifies the token against the gateway's JWKS and checks the gateway's "
            "revocation list (refetched every 5 s), as deployed, on both paths.",
            "The gateway's rate limit is set out of reach so it never refuses; its bucket is still taken "
            "on every call (in memory). Tokens: each client-credentials grant also writes an audit row "
            "(SQLite, WAL).",
        ],
        "table": {
            "columns": [
                "concurrency",
                "direct p50 ms",
                "gateway p50 ms",
                "direct p99 ms",
                "gateway p99 ms",
                "added p99 ms",
                "direct req/s",
                "gateway req/s",
                "ratio",
            ],
            "rows": rows,
            "caption": "whoami through the gateway vs. directly; tokens/s in headline",
        },
    }
