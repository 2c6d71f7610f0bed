"""An `ecom dev`-like program for the tests: a supervisor with two children that each have a grandchild.

Run as `python supervised_stack.py <port> <port>`; prints `READY` once both children answer /readyz,
then runs until SIGINT or SIGTERM. One grandchild ignores SIGTERM, so stopping it takes the SIGKILL path.
"""

from __future__ import annotations

import sys

from rich.console import Console
from supervised_children import server

from ecom_cli.supervisor import Supervisor


def main(polite_port: int, stubborn_port: int) -> int:
    supervisor = Supervisor(Console(highlight=False), grace_period=1.0, poll_interval=0.05)
    specs = [
        server("polite", polite_port, grandchild="polite"),
        server("stubborn", stubborn_port, grandchild="stubborn"),
    ]
    with supervisor.handling_signals():
        return supervisor.run(specs, ready_timeout=30, on_ready=lambda: supervisor.say("READY"))


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
