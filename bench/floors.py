"""The floors a burst is measured against, in the same run: (a) `mosquitto_sub` counting the
messages (the broker's), (b) a bare paho-mqtt subscriber decoding each with orjson
(`paho_floor.py`, Python's). Both read `FLOOR_TOPIC`, which the gateway does not subscribe
to, so they never compete with it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.harness import publish_burst

FLOOR_TOPIC = "safetx/bench/gas-%d/telemetry"  # as long as the gateway's topic, not one of its


def subscription_count(port: int) -> int:
    """Mosquitto's own count of subscriptions ($SYS, published every second)."""
    got: list[int] = []
    done = threading.Event()

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        got.append(int(m.payload))
        done.set()

    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe("$SYS/broker/subscriptions/count")
    c.loop_start()
    done.wait(5)
    c.loop_stop()
    c.disconnect()
    return got[-1] if got else -1


def floor_broker(pub: Path, port: int, qos: int, n: int, devices: int) -> float:
    before = subscription_count(port)
    sub = subprocess.Popen(
        [
            *("mosquitto_sub", "-p", str(port), "-q", str(qos), "-C", str(n)),
            *("-i", "floor-sub", "-t", FLOOR_TOPIC.replace("gas-%d", "+")),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while subscription_count(port) <= before and time.monotonic() < deadline:
        pass
    t0 = time.monotonic()
    publish_burst(pub, port, qos, n, devices, FLOOR_TOPIC)
    sub.wait(600)
    return n / (time.monotonic() - t0)


def floor_paho(pub: Path, port: int, qos: int, n: int, devices: int) -> float:
    sub = subprocess.Popen(
        [
            *(sys.executable, str(Path(__file__).parent / "paho_floor.py"), str(port)),
            *(str(qos), str(n), FLOOR_TOPIC.replace("gas-%d", "+")),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sub.stdout is not None
    if sub.stdout.readline().strip() != "ready":
        raise RuntimeError("paho floor subscriber did not start")
    t0 = time.monotonic()
    publish_burst(pub, port, qos, n, devices, FLOOR_TOPIC)
    done = sub.stdout.readline().split()
    sub.wait(60)
    if done[:2] != ["done", str(n)]:
        raise RuntimeError(f"paho floor got {done}")
    return n / (float(done[2]) - t0)
