"""MQTT ingest benchmark: readings per second through the whole alarm path, and the time
from a gas reading to the `close_valve` command while bulk telemetry is flowing.

    .venv/bin/python bench/ingest.py [--devices 1000] [--messages 200000]

Starts its own Mosquitto on a free port; the publisher runs in a separate process (as
devices would), the gateway in this one. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import free_port
from gateway.config import parse_config
from gateway.supervisor import Gateway


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_inflight_messages 0\nlog_type error\n"
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([binary, "-c", str(conf)])
    time.sleep(0.3)
    return proc, port


def config(port: int, devices: int, data_dir: Path) -> Any:
    devs: list[dict[str, Any]] = []
    for i in range(devices // 2):
        devs.append(
            {
                "id": f"gas-{i}",
                "type": "gas_detector",
                "location": f"room {i}",
                "shutoff_valve": f"valve-{i}",
            }
        )
        devs.append({"id": f"valve-{i}", "type": "gas_valve", "location": f"room {i}"})
    return parse_config(
        {
            "gateway": {"id": "bench", "data_dir": str(data_dir)},
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}"},
            "sites": [{"id": "bench", "name": "bench", "kind": "other", "devices": devs}],
        }
    )


def publisher(port: int, devices: int, messages: int, qos: int) -> None:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-pub")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    payloads = [orjson.dumps({"values": {"lel": (i % 50) / 10}}) for i in range(50)]
    last = None
    for i in range(messages):
        n = i % (devices // 2)
        last = c.publish(f"safety/bench/gas-{n}/telemetry", payloads[i % 50], qos=qos)
        if i % 5000 == 4999:
            last.wait_for_publish(60)  # keep paho's own queue bounded
    if last is not None:
        last.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


async def measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_mosquitto(Path(tmp))
        try:
            cfg = config(port, args.devices, Path(tmp) / "data")
            async with Gateway(cfg) as gw:
                while not gw.link.health.connected:
                    await asyncio.sleep(0.05)
                # Latency probe: watches the valve's command topic.
                seen: dict[str, float] = {}
                probe = mqtt.Client(
                    callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-probe"
                )
                probe.on_message = lambda c, u, m: seen.setdefault(m.topic, time.perf_counter())
                probe.connect("127.0.0.1", port)
                probe.subscribe("safety/bench/+/cmd", qos=1)
                probe.loop_start()
                await asyncio.sleep(0.3)

                start_received = gw.link.health.received
                proc = mp.get_context("spawn").Process(
                    target=publisher, args=(port, args.devices, args.messages, args.qos)
                )
                t0 = time.perf_counter()
                proc.start()
                # While the bulk stream flows, time gas readings to their close commands.
                latencies = []
                for k in range(args.probes):
                    await asyncio.sleep(args.probe_gap)
                    dev = k % (args.devices // 2)
                    topic = f"safety/bench/valve-{dev}/cmd"
                    seen.pop(topic, None)
                    sent = time.perf_counter()
                    probe.publish(
                        f"safety/bench/gas-{dev}/telemetry",
                        orjson.dumps({"values": {"lel": 35}}),
                        qos=1,
                    )
                    while topic not in seen and time.perf_counter() - sent < 10:
                        await asyncio.sleep(0.0005)
                    if topic in seen:
                        latencies.append((seen[topic] - sent) * 1000)
                    probe.publish(
                        f"safety/bench/gas-{dev}/telemetry",
                        orjson.dumps({"values": {"lel": 0}}),
                        qos=1,
                    )
                target = start_received + args.messages + 2 * args.probes
                while gw.link.health.received < target and time.perf_counter() - t0 < 300:
                    await asyncio.sleep(0.01)
                elapsed = time.perf_counter() - t0
                proc.join()
                got = gw.link.health.received - start_received
                probe.loop_stop()
                pairs = args.devices // 2
                sent_total = args.messages + 2 * args.probes
                print(f"devices:                {args.devices} ({pairs} gas detectors + valves)")
                print(f"messages:               {got} of {sent_total} (QoS {args.qos})")
                print(
                    f"ingest rate:            {got / elapsed:,.0f} readings/s through rules+alarms"
                )
                print(f"elapsed:                {elapsed:.2f} s")
                print(f"internal errors:        {gw.health()['internal_errors']}")
                if latencies:
                    lat = sorted(latencies)
                    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                    print(
                        f"gas reading -> close_valve under load: n={len(lat)} "
                        f"median {statistics.median(lat):.1f} ms, p99 {p99:.1f} ms, "
                        f"max {lat[-1]:.1f} ms"
                    )
        finally:
            broker.terminate()
            broker.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--qos", type=int, default=1, choices=(0, 1))
    p.add_argument("--probes", type=int, default=50)
    p.add_argument("--probe-gap", type=float, default=0.05)
    asyncio.run(measure(p.parse_args()))


if __name__ == "__main__":
    main()
