"""Runs a set of child processes as one unit: prefixed logs, readiness checks and a clean stop.

Each child gets a process group of its own, so a stop reaches whatever the child started too: SIGTERM
to every group, then SIGKILL to whatever is still alive after the grace period. Nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

import httpx
from rich.console import Console, RenderableType
from rich.text import Text

SUPERVISOR_NAME = "ecom"
# A second SIGINT/SIGTERM this long after the first kills at once; closer ones are the same signal
# delivered twice (by a terminal and a wrapper such as `timeout` or `make`).
KILL_NOW_AFTER = 1.0


@dataclass(frozen=True)
class ChildSpec:
    """A process to start: its argv, environment and the URL that answers 200 once it is ready.

    Children of a higher `layer` depend on those below: they are stopped first.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    ready_url: str | None = None
    colour: str = "white"
    layer: int = 0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    colour: str = "white"
    ready_url: str | None = None
    layer: int = 0
    ready: bool = False
    reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        """Whether the child or anything left in its process group still runs."""
        return self.process.poll() is None or process_group_alive(self.pid)


def process_group_alive(pgid: int) -> bool:
    """Whether process group `pgid` holds a process that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # After "(comm)" come: state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def describe_exit(returncode: int) -> str:
    """`exit code 3` or `killed by SIGKILL`."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Supervisor:
    """Starts children, streams their output with a coloured `name | ` prefix, watches them, stops them.

    Use it as a context manager (leaving it stops every child) and, in the main thread, inside
    `handling_signals()` so Ctrl-C and SIGTERM become a clean stop.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        grace_period: float = 10.0,
        poll_interval: float = 0.1,
        probe_timeout: float = 2.0,
        prefix_width: int = 0,
    ) -> None:
        self.console = console if console is not None else Console(highlight=False)
        self.grace_period = grace_period
        self.poll_interval = poll_interval
        self.probe_timeout = probe_timeout
        self.children: list[Child] = []
        self.failure: str | None = None
        self._stop_requested = threading.Event()
        self._kill_now = threading.Event()
        self._received_signal: str | None = None
        self._first_signal_at: float | None = None
        self._output_lock = threading.Lock()
        self._prefix_width = max(len(SUPERVISOR_NAME), prefix_width)
        self._stopped = False

    # -- output ---------------------------------------------------------------------------------

    def emit(self, name: str, colour: str, line: str, *, style: str = "") -> None:
        """Print one line under a process's prefix."""
        text = Text.assemble((f"{name:<{self._prefix_width}} | ", colour), (line, style))
        with self._output_lock:
            self.console.print(text, soft_wrap=True, highlight=False)

    def print(self, renderable: RenderableType) -> None:
        """Print anything Rich can render (a table...) without interleaving it with the logs."""
        with self._output_lock:
            self.console.print(renderable)

    def say(self, message: str, *, style: str = "bold") -> None:
        """Print a line of the supervisor's own."""
        self.emit(SUPERVISOR_NAME, "bold", message, style=style)

    def _pump(self, child: Child) -> None:
        stream = child.process.stdout
        assert stream is not None
        with stream:
            for raw in iter(stream.readline, b""):
                self.emit(child.name, child.colour, raw.decode("utf-8", "replace").rstrip("\r\n"))

    # -- children -------------------------------------------------------------------------------

    def start(self, spec: ChildSpec) -> Child:
        """Start a child in a process group of its own, its stdout and stderr streamed with a prefix."""
        process = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(spec.env) if spec.env is not None else None,
            cwd=spec.cwd,
            start_new_session=True,
        )
        child = self._add(Child(spec.name, process, spec.colour, spec.ready_url, spec.layer))
        child.reader = threading.Thread(
            target=self._pump, args=(child,), name=f"logs-{spec.name}", daemon=True
        )
        child.reader.start()
        return child

    def adopt(
        self, name: str, process: subprocess.Popen[bytes], *, colour: str = "white", layer: int = 0
    ) -> Child:
        """Watch and stop a process started elsewhere (it must lead its own process group)."""
        return self._add(Child(name, process, colour, layer=layer, ready=True))

    def _add(self, child: Child) -> Child:
        self._prefix_width = max(self._prefix_width, len(child.name))
        self.children.append(child)
        return child

    def _check_exits(self) -> bool:
        """Report every child that has exited; True if any has."""
        exited = [child for child in self.children if child.process.poll() is not None]
        for child in exited:
            if child.reader is not None:
                child.reader.join(timeout=1.0)  # its last words come before the verdict
            returncode = child.process.returncode
            message = f"{child.name} died unexpectedly ({describe_exit(returncode)})"
            self.failure = self.failure or message
            self.say(message, style="bold red")
        return bool(exited)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def request_stop(self) -> None:
        """Ask `wait_ready` and `wait` to return (safe from a signal handler or another thread)."""
        self._stop_requested.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only set flags here: printing from a signal handler could deadlock on the output lock.
        now = time.monotonic()
        if self._first_signal_at is None:
            self._first_signal_at = now
            self._received_signal = signal.Signals(signum).name
        elif now - self._first_signal_at >= KILL_NOW_AFTER:
            self._kill_now.set()
        self._stop_requested.set()

    @contextmanager
    def handling_signals(self) -> Iterator[None]:
        """Turn SIGINT and SIGTERM into a stop; another one a moment later skips the grace period."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def wait_ready(self, timeout: float) -> bool:
        """Poll each child's ready URL until all answer 200; False on timeout, a death or a stop."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=self.probe_timeout, trust_env=False) as client:
            while True:
                if self.stop_requested or self._check_exits():
                    return False
                for child in self.children:
                    if not child.ready and self._probe(client, child):
                        child.ready = True
                        self.say(f"{child.name} is ready", style="green")
                waiting = [child.name for child in self.children if not child.ready]
                if not waiting:
                    return True
                if time.monotonic() >= deadline:
                    self.failure = f"not ready after {timeout:g}s: {', '.join(waiting)}"
                    self.say(self.failure, style="bold red")
                    return False
                self._stop_requested.wait(self.poll_interval)

    @staticmethod
    def _probe(client: httpx.Client, child: Child) -> bool:
        if child.ready_url is None:
            return True
        try:
            return client.get(child.ready_url).status_code == 200
        except httpx.HTTPError:
            return False

    def wait(self) -> None:
        """Block until a stop is requested or a child exits."""
        while not self._stop_requested.wait(self.poll_interval):
            if self._check_exits():
                return

    def run(
        self,
        specs: Iterable[ChildSpec],
        *,
        ready_timeout: float,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        """Start `specs`, wait until all are ready, call `on_ready`, supervise until a stop or a death.

        Returns the exit code: 0 after a requested stop, 1 if a child died or was not ready in time.
        Every child is stopped before it returns.
        """
        try:
            for spec in specs:
                if self.stop_requested:
                    break
                self.start(spec)
            if self.wait_ready(ready_timeout):
                if on_ready is not None:
                    on_ready()
                self.wait()
        finally:
            self.stop()
        return self.exit_code

    @property
    def exit_code(self) -> int:
        return 1 if self.failure is not None else 0

    def stop(self) -> None:
        """Stop every child, top layer first: SIGTERM to each process group, SIGKILL after the grace."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_requested.set()
        if self._received_signal is not None:
            self.say(f"received {self._received_signal}, stopping (once more to kill at once)")
        for layer in sorted({child.layer for child in self.children}, reverse=True):
            self._stop_together([child for child in self.children if child.layer == layer])
        if self.children:
            self.say("stopped")

    def _stop_together(self, children: list[Child]) -> None:
        running = [child for child in children if child.process.poll() is None]
        if running:
            self.say(f"stopping {', '.join(child.name for child in running)}")
        for child in children:
            if child.alive():
                _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_period
        while (
            time.monotonic() < deadline
            and not self._kill_now.is_set()
            and any(child.alive() for child in children)
        ):
            self._kill_now.wait(0.05)
        for child in children:
            if child.alive():
                self.say(f"{child.name} still running, sending SIGKILL", style="yellow")
                _signal_group(child.pid, signal.SIGKILL)
        for child in children:
            child.process.wait()
            if child.reader is not None:
                child.reader.join(timeout=2.0)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
