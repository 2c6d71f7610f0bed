"""Small real child processes for the supervisor tests (each a `python -c` program)."""

from __future__ import annotations

import sys
from pathlib import Path

from ecom_cli.supervisor import ChildSpec

# argv: name port unready_probes [grandchild: none|polite|stubborn]
# Answers /readyz with 503 for the first `unready_probes` probes, then 200. With a grandchild, starts
# a sleeping python process first (a stubborn one ignores SIGTERM) and prints both pids.
SERVER = r"""
import http.server, os, subprocess, sys
name, port, unready, grandchild = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if grandchild != "none":
    code = "import signal, time\n"
    if grandchild == "stubborn":
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('sleeping', flush=True)\ntime.sleep(600)\n"
    sleeper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    sleeper.stdout.readline()  # its SIGTERM disposition is in place
    print(f"pids {os.getpid()} {sleeper.pid}", flush=True)
probes = 0
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global probes
        probes += 1
        ready = self.path == "/readyz" and probes > unready
        self.send_response(200 if ready else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
print(f"hello from {name}", flush=True)
print(f"{name} writes to stderr too", file=sys.stderr, flush=True)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

# argv: trigger-file exit-code. Exits with `exit-code` once `trigger-file` exists (at once if "-").
CRASHER = r"""
import os, sys, time
trigger, code = sys.argv[1], int(sys.argv[2])
while trigger != "-" and not os.path.exists(trigger):
    time.sleep(0.02)
print("going down", flush=True)
sys.exit(code)
"""


def server(name: str, port: int, *, unready_probes: int = 0, grandchild: str = "none") -> ChildSpec:
    return ChildSpec(
        name=name,
        argv=[sys.executable, "-c", SERVER, name, str(port), str(unready_probes), grandchild],
        ready_url=f"http://127.0.0.1:{port}/readyz",
        colour="cyan",
    )


def crasher(name: str, *, exit_code: int, trigger: Path | None = None) -> ChildSpec:
    argv = [sys.executable, "-c", CRASHER, str(trigger) if trigger else "-", str(exit_code)]
    return ChildSpec(name=name, argv=argv, colour="red")


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"
