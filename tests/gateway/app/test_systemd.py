"""sd_notify: the test plays systemd with a real unix datagram socket."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.mqtt.broker import free_port
from gateway.app.systemd import SystemdNotifier
from tests.conftest import Mosquitto, site_config, until, write_config


@pytest.fixture
def systemd_socket() -> Iterator[tuple[str, socket.socket]]:
    """An abstract-namespace datagram socket, as `$NOTIFY_SOCKET` names it (`@...`)."""
    name = f"@safety-gateway-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    try:
        yield name, sock
    finally:
        sock.close()


def received(sock: socket.socket, until: Callable[[list[str]], bool], timeout: float) -> list[str]:
    """Datagrams until `until(all so far)` holds; fails after `timeout` seconds."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout}s; received {got}")
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return got


def test_nothing_is_sent_without_notify_socket() -> None:
    n = SystemdNotifier.from_env({"WATCHDOG_USEC": "30000000"})
    assert not n.enabled
    assert n.watchdog_interval_s is None
    assert n.notify("READY=1") is False


def test_a_path_socket_and_the_watchdog_interval() -> None:
    with tempfile.TemporaryDirectory() as d:  # short: a socket path has 107 bytes at most
        path = os.path.join(d, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            n = SystemdNotifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
            assert n.watchdog_interval_s == pytest.approx(10.0)  # WatchdogSec=30, a third
            assert n.notify("READY=1") is True
            sock.settimeout(2)
            assert sock.recv(100) == b"READY=1"


def test_the_watchdog_belongs_to_the_main_process() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    assert SystemdNotifier.from_env(env).watchdog_interval_s is None


def test_a_missing_socket_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    n = SystemdNotifier(f"@nobody-listens-{uuid.uuid4().hex}")
    assert n.notify("WATCHDOG=1") is False
    assert n.notify("WATCHDOG=1") is False
    assert len([r for r in caplog.records if "sd_notify" in r.getMessage()]) == 1


def test_run_tells_systemd_ready_then_pings_the_watchdog(
    tmp_path: Path,
    broker: Mosquitto,
    cli_process: Callable[..., subprocess.Popen[bytes]],
    systemd_socket: tuple[str, socket.socket],
) -> None:
    name, sock = systemd_socket
    data = site_config(
        tmp_path / "data", broker.port, http={"host": "127.0.0.1", "port": free_port()}
    )
    cfg = write_config(tmp_path / "gateway.yaml", data)
    env = {**os.environ, "NOTIFY_SOCKET": name, "WATCHDOG_USEC": "300000"}  # ping every 0.1 s
    env.pop("WATCHDOG_PID", None)
    log = open(tmp_path / "gateway.log", "wb")
    proc = cli_process("run", "-c", str(cfg), env=env, stdout=log, stderr=log)
    got = received(sock, lambda g: "READY=1" in g, timeout=20)
    after_ready = received(sock, lambda g: g.count("WATCHDOG=1") >= 2, timeout=5)
    assert set(got) <= {"READY=1", "WATCHDOG=1"}
    assert set(after_ready) == {"WATCHDOG=1"}
    proc.send_signal(signal.SIGTERM)
    received(sock, lambda g: "STOPPING=1" in g, timeout=10)
    assert proc.wait(15) == 0
    log.close()


def drain(sock: socket.socket) -> list[str]:
    """Whatever has arrived, without waiting."""
    got = []
    sock.setblocking(False)
    while True:
        try:
            got.append(sock.recv(100).decode())
        except BlockingIOError:
            return got


async def test_a_hung_loop_stops_the_pings(systemd_socket: tuple[str, socket.socket]) -> None:
    name, sock = systemd_socket
    n = SystemdNotifier(name, watchdog_usec=150_000)  # a ping every 0.05 s
    task = asyncio.create_task(n.run_watchdog())
    try:
        pings: list[str] = []
        # The loop runs: pings arrive.
        await until(lambda: pings.extend(drain(sock)) or len(pings) >= 2, 5, "two pings")
        drain(sock)
        time.sleep(0.5)  # the loop hangs for ten intervals (the point of this test)
        assert drain(sock) == []
        pings.clear()  # running again: the pings resume
        await until(lambda: pings.extend(drain(sock)) or len(pings) >= 2, 5, "pings again")
        assert set(pings) == {"WATCHDOG=1"}
    finally:
        task.cancel()
