"""Simulated MQTT field devices, one paho-mqtt connection each (as real devices have).

Each device announces `online` (retained) on connect and leaves `offline` as its will,
publishes telemetry on its own interval, and the valve obeys `close_valve`/`open_valve`
and acknowledges. Values are set by scenarios; nothing here decides anything.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


@dataclass
class BrokerAddress:
    host: str
    port: int
    prefix: str = "safety"


@dataclass
class SimDevice:
    broker: BrokerAddress
    site: str
    id: str
    type: str
    interval_s: float = 5.0
    values: dict[str, float] = field(default_factory=dict)
    publishing: bool = True  # False: stays connected but says nothing (a hung device)
    _client: mqtt.Client | None = None
    _last_sent: float = 0.0
    sent: int = 0

    @property
    def base(self) -> str:
        return f"{self.broker.prefix}/{self.site}/{self.id}"

    def connect(self) -> None:
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"sim-{self.site}-{self.id}",
            clean_session=True,
        )
        c.will_set(f"{self.base}/status", "offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.connect(self.broker.host, self.broker.port, keepalive=10)
        c.loop_start()
        self._client = c

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        nodelay(client)
        client.publish(f"{self.base}/status", "online", qos=1, retain=True)
        self.subscribe(client)

    def subscribe(self, client: mqtt.Client) -> None:
        """Devices that take commands subscribe here."""

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.on_command(json.loads(msg.payload))
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable command %r", self.id, msg.payload)

    def on_command(self, cmd: dict[str, Any]) -> None:
        """Devices that take commands act here."""

    def publish_telemetry(self, now: float | None = None) -> None:
        if not self.values or self._client is None:
            return
        ts = int((now or time.time()) * 1000)
        payload = json.dumps({"ts": ts, "values": dict(self.values)})
        self._client.publish(f"{self.base}/telemetry", payload, qos=1)
        self.sent += 1

    def publish_event(self, event: str) -> None:
        assert self._client is not None
        payload = json.dumps({"ts": int(time.time() * 1000), "event": event})
        self._client.publish(f"{self.base}/event", payload, qos=1).wait_for_publish(5)

    def due(self, now: float) -> bool:
        return self.publishing and now - self._last_sent >= self.interval_s

    def tick(self, now: float) -> None:
        if self.due(now):
            self._last_sent = now
            self.publish_telemetry()

    def crash(self) -> None:
        """Drop the connection without DISCONNECT, so the broker publishes the will."""
        c = self._client
        if c is None:
            return
        sock = c.socket()
        c.loop_stop()
        if sock is not None:
            sock.close()
        self._client = None

    def disconnect(self) -> None:
        c = self._client
        if c is None:
            return
        c.disconnect()
        c.loop_stop()
        self._client = None


@dataclass
class ValveSim(SimDevice):
    """A motorised shut-off valve: closes on command after `travel_s`, acks, reports `open`."""

    travel_s: float = 1.0
    stuck: bool = False  # ignores commands entirely (a seized valve or a dead actuator)
    commands: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.values.setdefault("open", 1.0)

    def subscribe(self, client: mqtt.Client) -> None:
        client.subscribe(f"{self.base}/cmd", qos=1)

    def on_command(self, cmd: dict[str, Any]) -> None:
        with self.lock:
            self.commands.append(cmd)
        if self.stuck:
            return
        kind = cmd["cmd"]
        if kind not in ("close_valve", "open_valve"):
            self._ack(cmd["id"], ok=False, detail=f"unsupported {kind}")
            return
        target = 0.0 if kind == "close_valve" else 1.0
        timer = threading.Timer(self.travel_s, self._arrive, args=(cmd["id"], target))
        timer.daemon = True
        timer.start()

    def _arrive(self, command_id: str, target: float) -> None:
        self.values["open"] = target
        self._ack(command_id, ok=True)
        self.publish_telemetry()

    def _ack(self, command_id: str, ok: bool, detail: str | None = None) -> None:
        if self._client is None:
            return
        body: dict[str, Any] = {"id": command_id, "ok": ok}
        if detail:
            body["detail"] = detail
        self._client.publish(f"{self.base}/cmd/ack", json.dumps(body), qos=1)

    @property
    def is_open(self) -> bool:
        return self.values.get("open", 1.0) >= 0.5


BASELINE: dict[str, dict[str, float]] = {
    "gas_detector": {"lel": 0.0},
    "gas_alarm_controller": {"lel": 0.0},
    "co_detector": {"co_ppm": 0.0},
    "electrical_fire_monitor": {
        "residual_ma": 35.0,
        "temp_c_1": 28.0,
        "temp_c_2": 29.0,
        "temp_c_3": 27.5,
        "temp_c_4": 28.5,
        "current_a": 12.0,
        "voltage_v": 221.0,
    },
    "alarm_button": {},
    "smoke_detector": {},
}


def make_device(
    broker: BrokerAddress, site: str, device_id: str, device_type: str, interval_s: float
) -> SimDevice:
    if device_type == "gas_valve":
        return ValveSim(broker, site, device_id, device_type, interval_s)
    return SimDevice(
        broker, site, device_id, device_type, interval_s, dict(BASELINE.get(device_type, {}))
    )


def nodelay(client: mqtt.Client) -> None:
    """Small packets at once. A client that both receives QoS 1 messages and publishes waits
    40 ms per exchange otherwise (its PUBACK held by Nagle's algorithm until the broker's
    delayed ACK), once the broker itself has `set_tcp_nodelay true`."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
