"""The dev-stack supervisor, driven with small real child processes."""

from __future__ import annotations

import io
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from supervised_children import crasher, running, server

from ecom_cli.supervisor import Supervisor
from servicekit.broker import free_port

HELPER = Path(__file__).with_name("supervised_stack.py")


def captured() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, highlight=False), out


def test_children_become_ready_and_their_logs_are_prefixed() -> None:
    console, out = captured()
    with Supervisor(console, grace_period=5, poll_interval=0.05) as supervisor:
        supervisor.start(server("alpha", free_port(), unready_probes=3))
        supervisor.start(server("beta", free_port()))
        assert supervisor.wait_ready(timeout=20)
    text = out.getvalue()
    assert "alpha | hello from alpha" in text
    assert "alpha | alpha writes to stderr too" in text
    assert "beta  | hello from beta" in text
    assert "alpha is ready" in text
    assert supervisor.exit_code == 0


def test_stop_leaves_no_child_running() -> None:
    console, _ = captured()
    with Supervisor(console, grace_period=5, poll_interval=0.05) as supervisor:
        children = [supervisor.start(server(name, free_port())) for name in ("one", "two", "three")]
        assert supervisor.wait_ready(timeout=20)
        assert all(running(child.pid) for child in children)
    assert not any(running(child.pid) for child in children)


def test_higher_layers_are_stopped_first() -> None:
    console, out = captured()
    with Supervisor(console, grace_period=5, poll_interval=0.05) as supervisor:
        base = supervisor.start(replace(server("base", free_port()), layer=0))
        supervisor.start(replace(server("top", free_port()), layer=1))
        assert supervisor.wait_ready(timeout=20)
    lines = out.getvalue().splitlines()
    assert lines.index("ecom | stopping top") < lines.index("ecom | stopping base")
    assert not running(base.pid)


def test_child_dying_after_startup_is_reported_and_the_others_are_stopped(tmp_path: Path) -> None:
    console, out = captured()
    trigger = tmp_path / "crash-now"
    with Supervisor(console, grace_period=5, poll_interval=0.05) as supervisor:
        steady = supervisor.start(server("steady", free_port()))
        supervisor.start(crasher("crasher", exit_code=3, trigger=trigger))
        assert supervisor.wait_ready(timeout=20)
        trigger.touch()
        supervisor.wait()
    assert supervisor.exit_code != 0
    assert "crasher died unexpectedly (exit code 3)" in out.getvalue()
    assert "crasher | going down" in out.getvalue()
    assert not running(steady.pid)


def test_run_returns_non_zero_when_a_child_dies_during_startup() -> None:
    console, out = captured()
    supervisor = Supervisor(console, grace_period=5, poll_interval=0.05)
    specs = [server("steady", free_port()), crasher("crasher", exit_code=3)]
    assert supervisor.run(specs, ready_timeout=20) == 1
    assert "crasher died unexpectedly (exit code 3)" in out.getvalue()
    assert not any(running(child.pid) for child in supervisor.children)


def test_a_child_never_ready_fails_the_start_by_name() -> None:
    console, out = captured()
    supervisor = Supervisor(console, grace_period=5, poll_interval=0.05)
    specs = [server("fine", free_port()), server("sluggish", free_port(), unready_probes=10**9)]
    # Time enough for "fine" to come up on a loaded host (at 1 s it was sometimes named too).
    assert supervisor.run(specs, ready_timeout=8) == 1
    assert "not ready after 8s: sluggish\n" in out.getvalue()
    assert not any(running(child.pid) for child in supervisor.children)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_stack_and_leaves_no_grandchild(signum: signal.Signals) -> None:
    stack = subprocess.Popen(
        [sys.executable, str(HELPER), str(free_port()), str(free_port())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert stack.stdout is not None
    output_of_stack = stack.stdout

    def pump() -> None:
        for line in output_of_stack:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    pids: list[int] = []
    seen: list[str] = []
    try:
        while not seen or not seen[-1].rstrip().endswith("READY"):
            seen.append(lines.get(timeout=30))  # a guard against a hang, not a timing assertion
            if " | pids " in seen[-1]:
                pids += [int(pid) for pid in seen[-1].split(" | pids ")[1].split()]
        assert len(pids) == 4, seen
        assert all(running(pid) for pid in pids)
        stack.send_signal(signum)
        assert stack.wait(timeout=30) == 0
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
    reader.join(timeout=5)
    output = "".join(seen) + "".join(lines.queue)
    assert f"received {signum.name}" in output
    assert "stubborn still running, sending SIGKILL" in output
    assert not [pid for pid in pids if running(pid)], output
