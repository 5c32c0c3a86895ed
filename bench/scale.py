"""Size: start-up time, resident memory and API latency with many devices and open alarms.

    .venv/bin/python bench/scale.py                 # 10,000 devices, 1,000 open alarms
    .venv/bin/python bench/scale.py --smoke         # 500 devices, 50 alarms: for the suite

Starts its own Mosquitto and VictoriaMetrics. The gateway (`safety-gateway run`, its own
process) is configured with `--sites` sites of mixed devices; `--alarms` alarm buttons are
pressed, so that many alarms are open; then the gateway is restarted (the alarms come back
from the store) and timed from exec until its API answers with the broker connected. Prints
resident memory after start and after a burst of readings to every detector, and the
latency of `GET /api/devices`, `GET /api/overview` and `GET /api/alarms`. Checks that every
alarm came back; the figures are printed against the targets of issue 8.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import yaml

from bench.harness import GatewayProcess, MqttProbe, build_publisher, describe_ms, publish_burst
from simulator.testbed import Mosquitto, VictoriaMetrics, free_port

# per site: the mix of a large elderly-care home
MIX = (("gas", "gas_detector", 0.3), ("valve", "gas_valve", 0.3), ("btn", "alarm_button", 0.2))
MIX_REST = (("efm", "electrical_fire_monitor"), ("co", "co_detector"))


def site(i: int, devices: int) -> dict[str, Any]:
    devs: list[dict[str, Any]] = []
    counts = {prefix: int(devices * share) for prefix, _, share in MIX}
    for k in range(counts["gas"]):
        devs.append(
            {"id": f"gas-{k}", "type": "gas_detector", "location": f"厨房 {k}"}
            | ({"shutoff_valve": f"valve-{k}"} if k < counts["valve"] else {})
        )
    devs += [
        {"id": f"valve-{k}", "type": "gas_valve", "location": f"阀门 {k}"}
        for k in range(counts["valve"])
    ]
    devs += [
        {"id": f"btn-{k}", "type": "alarm_button", "location": f"走廊 {k}"}
        for k in range(counts["btn"])
    ]
    rest = devices - len(devs)
    for k in range(rest):
        prefix, kind = MIX_REST[k % 2]
        devs.append({"id": f"{prefix}-{k}", "type": kind, "location": f"房间 {k}"})
    return {"id": f"site-{i:02d}", "name": f"养老院 {i}", "kind": "elderly_care", "devices": devs}


def percentiles(url: str, path: str, n: int) -> tuple[str, int]:
    times: list[float] = []
    size = 0
    with httpx.Client(timeout=60) as client:
        for _ in range(n):
            t = time.monotonic()
            r = client.get(url + path)
            r.raise_for_status()
            times.append(time.monotonic() - t)
            size = len(r.content)
    return describe_ms(times), size


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sites", type=int, default=20)
    p.add_argument("--devices", type=int, default=10_000, help="in all, spread over the sites")
    p.add_argument("--alarms", type=int, default=1_000)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.sites, args.devices, args.alarms = 2, 500, 50
    per_site = args.devices // args.sites
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        pub = build_publisher(work)
        broker, vm = Mosquitto(work), VictoriaMetrics(work)
        broker.start()
        vm.start()
        http = free_port()
        sites = [site(i, per_site) for i in range(args.sites)]
        devices = sum(len(s["devices"]) for s in sites)
        config = work / "gateway.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "gateway": {"id": "scale", "data_dir": str(work / "data")},
                    "http": {"host": "127.0.0.1", "port": http},
                    "mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}"},
                    "influx": {"url": vm.url, "org": "bench", "bucket": "bench"},
                    "sites": sites,
                },
                allow_unicode=True,
            ),
            encoding="utf-8",
        )
        gw = GatewayProcess(config, http, work / "gateway.log")
        try:
            gw.start()
            first = gw.wait_ready(timeout=120)
            print(f"{devices:,} devices in {args.sites} sites; first start ready in {first:.2f} s")
            probe = MqttProbe(broker.port)
            buttons = [
                (s["id"], d["id"])
                for s in sites
                for d in s["devices"]
                if d["type"] == "alarm_button"
            ][: args.alarms]
            for site_id, button in buttons:
                probe.publish(f"safety/{site_id}/{button}/event", {"event": "pressed"})
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                opened = sum(gw.health()["open_alarms"].values())
                if opened >= len(buttons):
                    break
                time.sleep(0.2)
            probe.close()
            print(f"{opened:,} open alarms")
            gw.stop()
            gw.start()
            ready = gw.wait_ready(timeout=120, caught_up=False)
            rss_start = gw.rss_mb()
            back = sum(gw.health()["open_alarms"].values())
            print(f"restart with {back:,} open alarms: ready in {ready:.2f} s (target <= 5 s)")
            print(f"resident memory after start: {rss_start:.0f} MB (target <= 150 MB)")
            if back < len(buttons):
                failures.append(f"only {back} of {len(buttons)} open alarms came back")
            gas = max(1, int(per_site * MIX[0][2]))
            for s in sites:  # a reading to every gas detector, ten times
                publish_burst(
                    pub, broker.port, 1, gas * 10, gas, f"safety/{s['id']}/gas-%d/telemetry"
                )
            time.sleep(2.0)  # the time-series writer and the live feed take their share
            print(f"resident memory after {gas * 10 * args.sites:,} readings: {gw.rss_mb():.0f} MB")
            for path in ("/api/devices", "/api/overview", "/api/alarms?limit=1000"):
                figures, size = percentiles(gw.url, path, 20)
                print(f"GET {path}: {figures} ({size / 1024:.0f} KiB)")
        finally:
            gw.stop()
            vm.stop()
            broker.stop()
    for f in failures:
        print(f"FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
