"""Modbus polling benchmark: 200 simulated devices at a 1 s interval, with MQTT ingest
running at the same time. Prints register-block reads per second, p99 poll jitter (how
late polls start against their schedule) and the MQTT readings processed meanwhile.

    .venv/bin/python bench/modbus_poll.py [--devices 200] [--buses 20] [--seconds 30]
        [--mqtt-rate 2000]

The Modbus servers (pymodbus, the simulator's) and the MQTT publisher each run in their
own process, as the field devices would; the gateway runs in this one. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.modbus.poller import jitter_p99
from drivers.mqtt.broker import free_port
from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from simulator.testbed import Mosquitto

PROFILE = "acrel_arcm300t_z"


def serve_modbus(ports: list[int], per_bus: int, ready: Any) -> None:
    import logging

    from drivers.modbus.profile import builtin_profiles
    from simulator.modbus_device import SimModbusDevice
    from simulator.modbus_server import SimModbusServer

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

    async def main() -> None:
        profile = builtin_profiles()[PROFILE]
        servers = []
        for port in ports:
            devices = [SimModbusDevice(profile, unit) for unit in range(1, per_bus + 1)]
            for d in devices:
                d.set_quantity("residual_ma", 40)
            server = SimModbusServer(devices, port=port)
            await server.start()
            servers.append(server)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def publish_mqtt(port: int, rate: int, seconds: float, detectors: int) -> None:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-mqtt")
    c.connect("127.0.0.1", port)
    c.loop_start()
    payload = orjson.dumps({"values": {"lel": 1.5}})
    start = time.perf_counter()
    sent = 0
    while time.perf_counter() - start < seconds:
        due = int((time.perf_counter() - start) * rate)
        while sent < due:
            c.publish(f"safety/bench/gas-{sent % detectors}/telemetry", payload, qos=1)
            sent += 1
        time.sleep(0.005)
    c.loop_stop()
    c.disconnect()


def config(mqtt_port: int, bus_ports: list[int], per_bus: int, detectors: int, data: Path) -> Any:
    devices: list[dict[str, Any]] = []
    for b, port in enumerate(bus_ports):
        for unit in range(1, per_bus + 1):
            devices.append(
                {
                    "id": f"efm-{b}-{unit}",
                    "type": "electrical_fire_monitor",
                    "location": f"bus {b} unit {unit}",
                    "transport": "modbus",
                    "modbus": {"host": "127.0.0.1", "port": port, "unit": unit, "profile": PROFILE},
                    "poll_interval_s": 1.0,
                }
            )
    devices += [
        {"id": f"gas-{i}", "type": "gas_detector", "location": f"room {i}"}
        for i in range(detectors)
    ]
    return parse_config(
        {
            "gateway": {"id": "bench", "data_dir": str(data)},
            "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}"},
            "sites": [{"id": "bench", "name": "bench", "kind": "other", "devices": devices}],
        }
    )


async def measure(args: argparse.Namespace) -> None:
    per_bus = args.devices // args.buses
    ports = [free_port() for _ in range(args.buses)]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    servers = ctx.Process(target=serve_modbus, args=(ports, per_bus, ready), daemon=True)
    servers.start()
    ready.wait(60)
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp))
        broker.start()
        mqtt_port = broker.port
        try:
            cfg = config(mqtt_port, ports, per_bus, 500, Path(tmp) / "data")
            async with Gateway(cfg) as gw:
                while not gw.link.health.connected:
                    await asyncio.sleep(0.05)
                assert gw.modbus is not None
                await asyncio.sleep(3)  # let every device be polled and spread out
                targets = [t for b in gw.modbus.buses for t in b.targets]
                for t in targets:
                    t.jitter.clear()
                reads0 = sum(b.stats.reads for b in gw.modbus.buses)
                received0 = gw.link.health.received
                pub = ctx.Process(
                    target=publish_mqtt, args=(mqtt_port, args.mqtt_rate, args.seconds, 500)
                )
                t0 = time.perf_counter()
                pub.start()
                await asyncio.sleep(args.seconds)
                elapsed = time.perf_counter() - t0
                reads = sum(b.stats.reads for b in gw.modbus.buses) - reads0
                failed = sum(b.stats.failed_reads for b in gw.modbus.buses)
                received = gw.link.health.received - received0
                samples = sorted(s for t in targets for s in t.jitter)
                pub.join(30)
                buses = len(gw.modbus.buses)
                per_device = len(samples) / len(targets) / elapsed
                print(f"modbus devices:         {len(targets)} on {buses} buses, 1 s interval")
                print(
                    f"block reads:            {reads / elapsed:,.0f} per second ({failed} failed)"
                )
                print(f"polls per device:       {per_device:.2f} per second")
                if samples:
                    p50 = samples[len(samples) // 2] * 1000
                    p99 = jitter_p99(targets) * 1000
                    worst = samples[-1] * 1000
                    jitter = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms"
                    print(f"poll jitter:            {jitter}")
                rate = received / elapsed
                print(
                    f"mqtt ingest meanwhile:  {rate:,.0f} readings/s (offered {args.mqtt_rate}/s)"
                )
                print(f"internal errors:        {gw.health()['internal_errors']}")
        finally:
            broker.stop()
            servers.terminate()


def main() -> None:
    import logging

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--buses", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--mqtt-rate", type=int, default=2000)
    asyncio.run(measure(p.parse_args()))


if __name__ == "__main__":
    main()
