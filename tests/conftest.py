"""Fixtures that start real servers: Mosquitto on a free port, the gateway, its API.

Every server is started here and stopped by PID; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest
import yaml

from gateway.api import create_api
from gateway.config import GatewayConfig, parse_config
from gateway.supervisor import Gateway

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


class Mosquitto:
    """A real Mosquitto broker on loopback; `stop()`/`start()` keep the port."""

    def __init__(self, workdir: Path, extra: str = "", name: str = "mosquitto") -> None:
        if not os.path.exists(MOSQUITTO):
            pytest.fail("mosquitto is not installed: run `make test`, which installs it")
        self.port = free_port()
        self.workdir = workdir
        self.name = name
        self.conf = workdir / f"{name}.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            # the default (1000) would drop a restarting gateway's queued QoS 1 messages
            "max_queued_messages 100000\n"
            "log_type error\nlog_type warning\n" + extra
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.workdir / f"{self.name}.log", "ab")
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
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path)
    m.start()
    try:
        yield m
    finally:
        m.stop()


def site_config(
    data_dir: Path,
    broker_port: int,
    *,
    rules: dict[str, Any] | None = None,
    extra_devices: list[dict[str, Any]] | None = None,
    http: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A one-site configuration, as parsed YAML, for the integration tests."""
    devices: list[dict[str, Any]] = [
        {
            "id": "gas-kitchen",
            "type": "gas_detector",
            "location": "一楼厨房",
            "shutoff_valve": "valve-kitchen",
        },
        {"id": "valve-kitchen", "type": "gas_valve", "location": "一楼厨房"},
        {"id": "btn-lobby", "type": "alarm_button", "location": "大厅"},
        {"id": "efm-1", "type": "electrical_fire_monitor", "location": "配电室"},
        {"id": "co-boiler", "type": "co_detector", "location": "锅炉房"},
    ]
    devices += extra_devices or []
    return {
        "gateway": {"id": "test-gw", "data_dir": str(data_dir), "timezone": "Asia/Shanghai"},
        "http": http or {"host": "127.0.0.1", "port": 8080},
        "mqtt": {"url": f"mqtt://127.0.0.1:{broker_port}", "topic_prefix": "safety"},
        "rules": rules or {"valve_confirm_timeout": "2 s"},
        "sites": [
            {
                "id": "xingfu",
                "name": "城区幸福养老服务中心",
                "kind": "elderly_care",
                "contacts": [
                    {"name": "张杰荣", "role": "legal_representative", "phone": "+8613800000001"},
                    {"name": "李四应", "role": "safety_manager", "phone": "+8613800000002"},
                ],
                "devices": devices,
            }
        ],
    }


@dataclass
class RunningGateway:
    gw: Gateway
    api: httpx.AsyncClient
    config: GatewayConfig

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await until(lambda: self.gw.link.health.connected, timeout, "gateway connected to broker")


async def until(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll `predicate` until truthy; the assertion message says what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig, **kwargs: Any) -> AsyncIterator[RunningGateway]:
    kwargs.setdefault("tick_interval_s", 0.1)
    async with Gateway(config, **kwargs) as gw:
        transport = httpx.ASGITransport(app=create_api(gw))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as api:
            running = RunningGateway(gw, api, config)
            await running.wait_connected()
            yield running


@pytest.fixture
def config_data(tmp_path: Path, broker: Mosquitto) -> dict[str, Any]:
    return site_config(tmp_path / "data", broker.port)


@pytest.fixture
async def gateway(config_data: dict[str, Any]) -> AsyncIterator[RunningGateway]:
    async with running_gateway(parse_config(config_data)) as running:
        yield running


@dataclass
class Probe:
    """A test-side MQTT client: publishes as devices do and records what the gateway sends."""

    client: aiomqtt.Client
    received: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish(
        self, topic: str, payload: bytes | str | dict[str, Any], retain: bool = False
    ) -> None:
        if isinstance(payload, dict):
            payload = orjson.dumps(payload)
        await self.client.publish(topic, payload, qos=1, retain=retain)

    async def telemetry(self, device: str, values: dict[str, Any], site: str = "xingfu") -> None:
        await self.publish(f"safety/{site}/{device}/telemetry", {"values": values})

    async def event(self, device: str, event: str, site: str = "xingfu") -> None:
        await self.publish(f"safety/{site}/{device}/event", {"event": event})

    def messages(self, suffix: str) -> list[dict[str, Any]]:
        return [orjson.loads(p) for t, p in self.received if t.endswith(suffix)]

    async def wait_for(
        self,
        suffix: str,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((m for m in self.messages(suffix) if match(m)), None)

        found: dict[str, Any] = await until(find, timeout, f"a message on *{suffix}")
        return found


@contextlib.asynccontextmanager
async def probe_client(
    port: int, subscribe: tuple[str, ...] = ("safety/#",)
) -> AsyncIterator[Probe]:
    client = aiomqtt.Client("127.0.0.1", port, identifier=f"probe-{time.monotonic_ns()}")
    await client.__aenter__()
    probe = Probe(client)
    for topic in subscribe:
        await client.subscribe(topic, qos=1)

    async def record() -> None:
        with contextlib.suppress(aiomqtt.MqttError):  # the test may stop the broker
            async for m in client.messages:
                payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                probe.received.append((m.topic.value, payload))

    task = asyncio.create_task(record())
    try:
        yield probe
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


@pytest.fixture
async def probe(broker: Mosquitto) -> AsyncIterator[Probe]:
    async with probe_client(broker.port) as p:
        yield p


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# ------------------------------------------------------------ VictoriaMetrics
VICTORIA_METRICS = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"

# (metric name, sorted labels, timestamp ms, value): one sample as VM exports it
Sample = tuple[str, tuple[tuple[str, str], ...], int, float]


class VictoriaMetrics:
    """A real VictoriaMetrics on loopback; `stop()`/`start()` keep the port and the data."""

    def __init__(self, workdir: Path) -> None:
        if not os.path.exists(VICTORIA_METRICS):
            pytest.fail("victoria-metrics is not installed: run `make test`, which installs it")
        self.port = free_port()
        self.data = workdir / "vm-data"
        self.log = workdir / "vm.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                VICTORIA_METRICS,
                # VM silently drops (while answering 204) points older than its retention,
                # one month by default.
                "-retentionPeriod=100y",
                f"-storageDataPath={self.data}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
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
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def samples(self, match: str) -> list[Sample]:
        """Every stored sample of the matching series, duplicates included."""
        # Freshly written points become visible to export only after a flush.
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()
        r = httpx.get(f"{self.url}/api/v1/export", params={"match[]": match}, timeout=30)
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


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
