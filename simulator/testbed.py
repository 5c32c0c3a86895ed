"""Real servers on loopback for the tests and the benchmarks: Mosquitto and VictoriaMetrics.

Each is started on a free port, waited for by a condition (never a fixed sleep) and stopped
by PID. The broker configuration carries what deploy/mosquitto.conf carries for speed:
`set_tcp_nodelay true` (without it, Nagle's algorithm against delayed ACKs puts 40 ms on
every small message: DESIGN section 13).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from drivers.mqtt.broker import free_port

__all__ = ["MOSQUITTO", "VICTORIA_METRICS", "Mosquitto", "VictoriaMetrics", "free_port"]

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
VICTORIA_METRICS = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"

# (metric name, sorted labels, timestamp ms, value): one sample as VM exports it
Sample = tuple[str, tuple[tuple[str, str], ...], int, float]


class NotInstalled(RuntimeError):
    pass


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Mosquitto:
    """A real Mosquitto broker on loopback; `stop()`/`start()` keep the port."""

    BASE = (
        "allow_anonymous true\n"
        "persistence false\n"
        "set_tcp_nodelay true\n"
        # the default (1000) would drop a restarting gateway's queued QoS 1 messages
        "max_queued_messages 0\n"
        "max_inflight_messages 100\n"
        "log_type error\nlog_type warning\n"
    )

    def __init__(
        self,
        workdir: Path,
        extra: str = "",
        name: str = "mosquitto",
        config: Callable[[int], str] | None = None,
    ) -> None:
        """`config`: the whole configuration instead, given the port (e.g. deploy/'s files
        rendered for the test); the broker is up when that port listens."""
        if not Path(MOSQUITTO).exists():
            raise NotInstalled("mosquitto is not installed: `make test` installs it")
        self.port = free_port()
        self.workdir = workdir
        self.name = name
        self.conf = workdir / f"{name}.conf"
        text = f"listener {self.port} 127.0.0.1\n" + self.BASE + extra
        self.conf.write_text(config(self.port) if config is not None else text)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - the broker's
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        wait_port(self.port)

    def kill(self) -> None:
        """Gone without a word (power cut, lost network): no wills, no clean disconnects."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, 5)
            self.proc = None


class VictoriaMetrics:
    """A real VictoriaMetrics on loopback; `stop()`/`start()` keep the port and the data."""

    def __init__(self, workdir: Path) -> None:
        if not Path(VICTORIA_METRICS).exists():
            raise NotInstalled("victoria-metrics is not installed: `make test` installs it")
        self.port = free_port()
        self.data = workdir / "vm-data"
        self.log = workdir / "vm.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - the server's
        self.proc = subprocess.Popen(
            [
                VICTORIA_METRICS,
                # VM silently drops (while answering 204) points older than its retention,
                # one month by default.
                "-retentionPeriod=100y",
                f"-storageDataPath={self.data}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                # Points are queryable at once (by default the last 30 s are hidden).
                "-search.latencyOffset=0s",
                "-search.disableCache",
            ],
            stdout=out,
            stderr=out,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError("victoria-metrics did not become healthy")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, 15)
            self.proc = None

    def flush(self) -> None:
        """Make freshly written points visible to queries and exports."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def samples(self, match: str) -> list[Sample]:
        """Every stored sample of the matching series, duplicates included."""
        self.flush()
        r = httpx.get(f"{self.url}/api/v1/export", params={"match[]": match}, timeout=120)
        r.raise_for_status()
        out: list[Sample] = []
        for text in r.text.splitlines():
            row = json.loads(text)
            labels = dict(row["metric"])
            name = labels.pop("__name__")
            key = tuple(sorted(labels.items()))
            for ts, value in zip(row["timestamps"], row["values"], strict=True):
                out.append((name, key, int(ts), float(value)))
        return sorted(out)

    def count(self, selector: str, window: str = "1d") -> int:
        """How many samples of the selected series are stored (duplicates included)."""
        self.flush()
        r = httpx.get(
            f"{self.url}/api/v1/query",
            params={"query": f"sum(count_over_time({selector}[{window}]))"},
            timeout=30,
        )
        r.raise_for_status()
        result = r.json()["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0
