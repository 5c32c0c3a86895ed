"""Burst ingest against its floors, measured in one run; latency under load; backlog replay.

    .venv/bin/python bench/burst.py                 # 500,000 readings, QoS 0 and 1
    .venv/bin/python bench/burst.py --smoke         # a few thousand: for the test suite

Starts its own Mosquitto (sys_interval 1, set_tcp_nodelay true) and VictoriaMetrics on free
ports. A compiled libmosquitto publisher (bench/burst_pub.c) sends contract readings
`{"ts": …, "values": {"lel": …}}` round-robin over the gas detectors, as fast as the broker
takes them. For each QoS, in the same run:

  (a) `mosquitto_sub` counting the messages: the broker floor;
  (b) a bare paho-mqtt subscriber decoding each payload with orjson: the Python floor;
  (c) the gateway, `safety-gateway run` in its own process with the rules, the alarm store
      and the time-series feed on, timed from the first publish until every point is
      readable in VictoriaMetrics; meanwhile `/api/health` is timed, and button presses of
      other devices are timed to their alarm on `WS /api/live`.

(a) and (b) read a topic the gateway does not subscribe to, so they never compete with it.
Then: gas reading -> `close_valve` and alarm -> `WS /api/live` while (c) runs at half its
measured rate; a storm of detectors crossing level 1 at once; and backlog replay (the
gateway stopped while the burst queues in its persistent session, then started, with a gas
reading published after the start timed to its `close_valve`).

Checks the counts (nothing lost, nothing doubled, no reconnect) and exits 1 if one is off;
the speed figures are printed against the targets of issue 8, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.burst_phases import (
    PROBES,
    Clock,
    Failures,
    backlog_replay,
    check_points,
    gateway_burst,
    latency_under_load,
    storm,
    wait_points,
)
from bench.floors import floor_broker, floor_paho
from bench.harness import (
    GatewayProcess,
    build_publisher,
    gateway_config,
    settle,
    site_devices,
    step,
)
from simulator.testbed import Mosquitto, VictoriaMetrics, free_port

BUTTONS = 200


@dataclass
class Run:
    qos: int
    broker: float = 0.0
    paho: float = 0.0
    gateway: float = 0.0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--messages", type=int, default=500_000)
    p.add_argument("--devices", type=int, default=1000, help="gas detectors in the burst")
    p.add_argument("--qos", type=int, nargs="+", default=[0, 1], choices=(0, 1))
    p.add_argument("--smoke", action="store_true", help="a few thousand messages, every phase")
    args = p.parse_args()
    if args.smoke:
        args.messages, args.devices = 3000, 100
    n, devices = args.messages, args.devices
    failures = Failures()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        work = Path(tmp)
        pub = build_publisher(work)
        broker = Mosquitto(work, extra="sys_interval 1\n")
        vm = VictoriaMetrics(work)
        broker.start()
        vm.start()
        http_port = free_port()
        config = gateway_config(
            work, broker.port, http_port, site_devices(devices, PROBES, BUTTONS), vm.url
        )
        gw = GatewayProcess(config, http_port, work / "gateway.log")
        try:
            with step("gateway start"):
                gw.start()
                ready = gw.wait_ready()
                print(f"   ready in {ready:.2f} s, {2 * (devices + PROBES) + BUTTONS} devices")
            clock = Clock(budget=10 * n + 100_000)
            accepted = 0
            buttons = iter(range(BUTTONS))
            for qos in args.qos:
                run = Run(qos)
                with step(f"QoS {qos}: {n:,} readings over {devices} gas detectors"):
                    run.broker = floor_broker(pub, broker.port, qos, n, devices)
                    print(f"   (a) mosquitto_sub: {run.broker:,.0f} msg/s")
                    run.paho = floor_paho(pub, broker.port, qos, n, devices)
                    print(f"   (b) bare paho + orjson: {run.paho:,.0f} msg/s")
                    first = next(buttons)
                    run.gateway, taken = gateway_burst(
                        pub, broker.port, qos, n, devices, gw, vm, clock,
                        range(first, first + 40), failures,
                    )  # fmt: skip
                    accepted += taken
                    for _ in range(40):  # the presses used: the next run takes fresh buttons
                        next(buttons, None)
                runs.append(run)
            with step("latency while the gateway runs at half its measured rate"):
                assert vm.proc is not None
                # VictoriaMetrics merging what the bursts wrote (a smoke run writes too little)
                waited = 0.0 if args.smoke else settle(vm.proc.pid)
                print(f"   (waited {waited:.0f} s for VictoriaMetrics to settle)")
                rate = min(r.gateway for r in runs) / 2
                seconds = 1.0 if args.smoke else 12.0
                accepted += latency_under_load(
                    pub, broker.port, rate, devices, gw, clock, range(PROBES - 1), seconds, failures
                )
            with step("storm"):
                storm(pub, broker.port, min(500, devices), clock, failures)
                accepted += min(500, devices)
            with step(f"backlog replay: {n:,} readings queued while the gateway is stopped"):
                # The backlog is counted from here: every point accepted so far must be in
                # VictoriaMetrics first (the last second of the storm may still be on its way).
                wait_points(vm, accepted, stall_s=10)
                backlog_replay(pub, broker.port, n, devices, gw, vm, clock, failures)
                accepted += n + 1
            with step("every point once"):
                wait_points(vm, accepted, stall_s=10)
                check_points(vm, accepted, failures)
        finally:
            gw.stop()
            vm.stop()
            broker.stop()
            if failures:
                with contextlib.suppress(OSError):
                    print((work / "gateway.log").read_text()[-5000:])
    print("\n== summary (msg/s; ratios in the same run)")
    head = ("QoS", "(a) broker", "(b) paho", "(c) gateway", "c/a", "c/b")
    print("   {:>3}  {:>11}  {:>9}  {:>11}  {:>5}  {:>5}  target c/b".format(*head))
    for r in runs:
        target = 0.75 if r.qos == 0 else 0.90
        print(
            f"   {r.qos:>3}  {r.broker:>11,.0f}  {r.paho:>9,.0f}  {r.gateway:>11,.0f}  "
            f"{r.gateway / r.broker:>5.2f}  {r.gateway / r.paho:>5.2f}  >= {target:.2f}"
            f"{'' if r.gateway / r.paho >= target else '  (below)'}"
        )
    if failures:
        print(f"\n{len(failures)} check(s) failed:")
        for f in failures:
            print(f"  - {f}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
