"""What the benchmarks share: the compiled publisher, the gateway as a separate process, and
probes that time what the gateway does (MQTT commands, the live feed, the API).

Everything runs on loopback with servers started here on free ports (simulator.testbed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect as ws_connect

from simulator.devices import nodelay

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = Path(sys.executable).parent / "safety-gateway"
SITE = "bench"


# ------------------------------------------------------------------- publisher
def build_publisher(workdir: Path) -> Path:
    """bench/burst_pub.c compiled against libmosquitto (Debian libmosquitto-dev)."""
    out = workdir / "burst_pub"
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("no C compiler: install gcc")
    subprocess.run(
        [cc, "-O2", "-o", str(out), str(ROOT / "bench" / "burst_pub.c"), "-lmosquitto"],
        check=True,
    )
    return out


def publish_burst(
    binary: Path,
    port: int,
    qos: int,
    count: int,
    devices: int,
    topic_fmt: str,
    *,
    rate: float = 0.0,
    ts0_ms: int | None = None,
    lel: float | None = None,
    wait: bool = True,
) -> subprocess.Popen[bytes]:
    """Start the C publisher; message i carries ts `ts0_ms + i` (unique per device)."""
    if ts0_ms is None:
        ts0_ms = int(time.time() * 1000) - count - 1000  # all in the past: queryable now
    args = [str(binary), "127.0.0.1", str(port), str(qos), str(count), str(devices), topic_fmt]
    args += [f"{rate:g}", str(ts0_ms)] + ([f"{lel:g}"] if lel is not None else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    if wait:
        proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"publisher failed ({proc.returncode})")
    return proc


# ------------------------------------------------------------------- gateway
def site_devices(pairs: int, probes: int, buttons: int) -> list[dict[str, Any]]:
    """`pairs` gas detectors gas-i each closing valve-i (the bulk stream's devices), probe
    detectors and valves for timing, and alarm buttons."""
    devices: list[dict[str, Any]] = []
    for prefix, n in (("gas", pairs), ("probe-gas", probes)):
        valve = "valve" if prefix == "gas" else "probe-valve"
        for i in range(n):
            devices.append(
                {
                    "id": f"{prefix}-{i}",
                    "type": "gas_detector",
                    "location": f"room {i}",
                    "shutoff_valve": f"{valve}-{i}",
                }
            )
            devices.append({"id": f"{valve}-{i}", "type": "gas_valve", "location": f"room {i}"})
    for i in range(buttons):
        devices.append({"id": f"btn-{i}", "type": "alarm_button", "location": f"floor {i}"})
    return devices


def gateway_config(
    workdir: Path, mqtt_port: int, http_port: int, devices: list[dict[str, Any]], influx: str | None
) -> Path:
    data: dict[str, Any] = {
        "gateway": {"id": "bench-gw", "data_dir": str(workdir / "data")},
        "http": {"host": "127.0.0.1", "port": http_port},
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "topic_prefix": "safety"},
        "sites": [{"id": SITE, "name": "bench", "kind": "other", "devices": devices}],
    }
    if influx is not None:
        data["influx"] = {"url": influx, "org": "bench", "bucket": "bench"}
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class GatewayProcess:
    """`safety-gateway run` in its own process, as deployed."""

    def __init__(self, config: Path, http_port: int, log: Path) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{http_port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - the process's
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [str(GATEWAY), "run", "-c", str(self.config)], stdout=out, stderr=out
        )

    def wait_ready(self, timeout: float = 60.0, caught_up: bool = True) -> float:
        """Seconds from start until the API answers, the link is up and (by default)
        catch-up is over."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError, KeyError):
                h = self.health()
                if h["broker"]["connected"] and not (
                    caught_up and h["broker"]["catchup"]["active"]
                ):
                    return time.monotonic() - self.started_at
            time.sleep(0.05)
        raise TimeoutError(f"gateway not ready: {self.log.read_text()[-3000:]}")

    def health(self) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/api/health", timeout=10)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def counter(self, name: str, **labels: str) -> float:
        """A value from /metrics (0 when the series does not exist yet)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        want = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
        )
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


# --------------------------------------------------------------------- probes
@dataclass
class MqttProbe:
    """Publishes as devices do and records when the gateway's commands arrive."""

    port: int
    commands: dict[str, float] = field(default_factory=dict)  # device -> first cmd time

    def __post_init__(self) -> None:
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"probe-{os.getpid()}"
        )
        c.on_message = self._on_message
        subscribed = threading.Event()
        c.on_subscribe = lambda *_: subscribed.set()
        c.connect("127.0.0.1", self.port)
        nodelay(c)
        c.subscribe(f"safety/{SITE}/+/cmd", qos=1)
        c.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError("probe not subscribed")
        self.client = c

    def _on_message(self, _c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        device = m.topic.split("/")[2]
        self.commands.setdefault(device, time.monotonic())

    def publish(self, topic: str, payload: dict[str, Any]) -> float:
        sent = time.monotonic()
        self.client.publish(topic, orjson.dumps(payload), qos=1)
        return sent

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class LiveProbe:
    """A `WS /api/live` subscriber recording when each alarm (by device) first arrives."""

    def __init__(self, url: str) -> None:
        self.alarms: dict[str, float] = {}
        self.messages = 0
        self._ws = ws_connect(url.replace("http", "ws", 1) + "/api/live", max_size=None)
        self._ws.recv(timeout=10)  # the snapshot
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            for raw in self._ws:
                now = time.monotonic()
                msg = json.loads(raw)
                self.messages += 1
                if msg.get("kind") == "alarm":
                    self.alarms.setdefault(msg["alarm"]["device"], now)

    def close(self) -> None:
        self._ws.close()


class _Poller:
    """Calls `poll` every `every_s` on a thread (with one HTTP client) until `stop`."""

    def __init__(self, url: str, every_s: float) -> None:
        self.url = url
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self.every_s):
                self.poll(client)

    def poll(self, client: httpx.Client) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class AlarmPoller(_Poller):
    """Polls `GET /api/alarms?type=…`: when each device's alarm is first in the gateway's
    book (before its commit, which the live feed and MQTT wait for)."""

    def __init__(self, url: str, alarm_type: str, every_s: float = 0.02) -> None:
        self.alarm_type = alarm_type
        self.seen: dict[str, float] = {}
        super().__init__(url, every_s)

    def poll(self, client: httpx.Client) -> None:
        with contextlib.suppress(httpx.HTTPError):
            r = client.get(f"{self.url}/api/alarms", params={"type": self.alarm_type})
            now = time.monotonic()
            for alarm in r.json():
                self.seen.setdefault(alarm["device"], now)


class HealthPoller(_Poller):
    """Times `GET /api/health` while the load runs."""

    def __init__(self, url: str, every_s: float = 0.2) -> None:
        self.latencies: list[float] = []
        self.failures = 0
        super().__init__(url, every_s)

    def poll(self, client: httpx.Client) -> None:
        t = time.monotonic()
        try:
            client.get(f"{self.url}/api/health").raise_for_status()
            self.latencies.append(time.monotonic() - t)
        except httpx.HTTPError:
            self.failures += 1


def settle(pid: int, below: float = 0.15, for_s: float = 2.0, timeout: float = 90.0) -> float:
    """Wait until a process (VictoriaMetrics merging what a burst wrote) uses less than
    `below` of a core for `for_s`; returns the seconds waited."""
    hz = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / hz

    started = time.monotonic()
    quiet_since = started
    last = cpu()
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now = cpu()
        if now - last > below * 0.5:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= for_s:
            break
        last = now
    return time.monotonic() - started


# ------------------------------------------------------------------- figures
def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def describe_ms(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    if not ms:
        return "n=0"
    return (
        f"n={len(ms)} p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms"
    )


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    print(f"\n== {title}", flush=True)
    t = time.monotonic()
    yield
    print(f"   ({time.monotonic() - t:.1f} s)", flush=True)
