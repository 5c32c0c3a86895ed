"""Ports for the servers that tests, benchmarks and the demo start."""

from __future__ import annotations

import socket
from pathlib import Path

from drivers.mqtt.broker import free_port


def test_ports_are_bindable_distinct_and_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports), "never the same port twice"
    assert all(10_000 <= p < low for p in ports), "outgoing connections cannot take them"
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))
