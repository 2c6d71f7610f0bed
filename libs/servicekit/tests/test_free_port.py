"""free_port picks listening ports outside the range the kernel gives outgoing connections."""

from __future__ import annotations

import socket

from servicekit import broker
from servicekit.broker import free_port


def test_free_port_is_below_the_ephemeral_range_and_can_be_listened_on() -> None:
    low = broker._ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(broker._LOWEST_PICKED <= port < low for port in ports), (ports, low)
    assert len(ports) > 1  # picked at random, so two suites side by side rarely meet
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))
        sock.listen()


def test_free_port_skips_a_port_in_use(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setattr(
            broker.random, "sample", lambda population, k: [taken, *range(10000, 10000 + k - 1)]
        )
        assert free_port() != taken
