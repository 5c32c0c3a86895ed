"""Shared parts of the fault tests: a gateway process's configuration, its metrics and health
over HTTP, a device publisher with a persistent MQTT session (paho, its own thread), and a
proxy that keeps the broker's PUBACKs from it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from simulator.devices import nodelay
from tests.conftest import free_port, site_config
from tests.support.ack_trap import PUBACK
from tests.support.ack_trap import _cut as cut_packet

ADMIN_TOKEN = "faults-admin-token-0123456789"


def gas_ids(n: int) -> list[str]:
    return [f"gas-{i:03d}" for i in range(n)]


def process_config(
    tmp_path: Path,
    broker_port: int,
    *,
    detectors: int = 0,
    influx_url: str | None = None,
    data_dir: Path | None = None,
    **extra: Any,
) -> tuple[dict[str, Any], int]:
    """A one-site configuration for `safety-gateway run` with `detectors` more gas detectors
    (each with its valve), an admin token (env FAULTS_ADMIN), and the time-series feed when
    `influx_url` is given. Returns the configuration and its HTTP port."""
    port = free_port()
    devices: list[dict[str, Any]] = []
    for gas in gas_ids(detectors):
        valve = gas.replace("gas", "valve")
        devices += [
            {"id": gas, "type": "gas_detector", "location": "厨房", "shutoff_valve": valve},
            {"id": valve, "type": "gas_valve", "location": "厨房"},
        ]
    http = {
        "host": "127.0.0.1",
        "port": port,
        "tokens": [{"name": "admin", "token_env": "FAULTS_ADMIN", "role": "admin"}],
    }
    data = site_config(
        data_dir or tmp_path / "data", broker_port, extra_devices=devices, http=http, **extra
    )
    if influx_url is not None:
        data["influx"] = {
            "url": influx_url,
            "org": "minzheng",
            "bucket": "safety",
            "batch_size": 500,
            "flush_interval": "100 ms",
            "timeout": "1 s",
        }
    return data, port


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text (0 when absent): `labels` as written,
    e.g. `channel="telemetry"`."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape(base: str) -> str:
    r = httpx.get(f"{base}/metrics", timeout=10)
    r.raise_for_status()
    return r.text


def telemetry_processed(base: str) -> int:
    """Telemetry messages the router took (live, from the backlog and history-only)."""
    text = scrape(base)
    return int(
        metric(text, "gateway_messages_total", 'channel="telemetry"')
        + metric(text, "gateway_messages_total", 'channel="telemetry_backlog"')
    )


def telemetry_processed_or_none(base: str) -> Callable[[], int | None]:
    """For `wait`: the count once the gateway has taken at least one telemetry message."""
    return lambda: telemetry_processed(base) or None


def health(base: str, timeout: float = 5) -> dict[str, Any]:
    # the detail (broker, queues) is for signed-in callers
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    r = httpx.get(f"{base}/api/health", timeout=timeout, headers=auth)
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def wait(predicate: Any, timeout: float, what: str) -> Any:
    """Poll a blocking predicate until truthy (for threads and plain HTTP)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value})")
        time.sleep(0.05)


class Publisher:
    """Devices' publisher: one paho client with a persistent session (clean_session False)
    and QoS 1, reconnecting by itself; `acked` counts the broker's PUBACKs."""

    def __init__(self, port: int, client_id: str = "faults-publisher") -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.acked = 0
        self.connects = 0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", port, keepalive=5)
        nodelay(self.client)
        self.client.loop_start()
        wait(lambda: self.connects, 10, "publisher connected")

    def _on_publish(self, *_: Any) -> None:
        with self._lock:
            self.acked += 1

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        self.connects += 1
        nodelay(client)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class AckHold:
    """A TCP proxy between a device and the broker that can hold back the broker's PUBACKs
    (`holding`): the broker has taken those publications and passed them on, the device never
    hears so and, once reconnected, sends them again as QoS 1 requires. Only packets from the
    broker are cut (by their MQTT fixed header); a connection ends both ways when either side
    closes. Threads, for the blocking fault tests."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self.holding = False
        self.held = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                device, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                broker = socket.create_connection(("127.0.0.1", self.broker_port), timeout=2)
            except OSError:
                device.close()  # the broker is down: the device retries
                continue
            broker.settimeout(None)
            for s in (device, broker):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(device, broker, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(broker, device, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_broker: bool) -> None:
        buf = bytearray()
        try:
            while data := src.recv(65536):
                if not from_broker:
                    dst.sendall(data)
                    continue
                buf += data
                out = bytearray()
                while (packet := cut_packet(buf)) is not None:
                    if self.holding and packet[0] & 0xF0 == PUBACK:
                        self.held += 1
                        continue
                    out += packet
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
