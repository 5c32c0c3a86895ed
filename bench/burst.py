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
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.harness import (
    SITE,
    AlarmPoller,
    GatewayProcess,
    HealthPoller,
    LiveProbe,
    MqttProbe,
    build_publisher,
    describe_ms,
    gateway_config,
    percentile,
    publish_burst,
    settle,
    site_devices,
    step,
)
from simulator.testbed import Mosquitto, VictoriaMetrics, free_port

GATEWAY_TOPIC = "safety/bench/gas-%d/telemetry"
FLOOR_TOPIC = "safetx/bench/gas-%d/telemetry"  # same length, not the gateway's
PROBES = 200
BUTTONS = 200


@dataclass
class Run:
    qos: int
    broker: float = 0.0
    paho: float = 0.0
    gateway: float = 0.0


class Clock:
    """Device timestamps for the bursts: consecutive, never reused, all in the past, so that
    every (device, ts) of the whole run is unique and every point is queryable at once."""

    def __init__(self, budget: int) -> None:
        self.next_ms = int(time.time() * 1000) - budget - 60_000

    def take(self, count: int) -> int:
        start, self.next_ms = self.next_ms, self.next_ms + count
        return start


class Failures(list[str]):
    def check(self, ok: bool, what: str) -> None:
        print(f"   {'ok ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.append(what)


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


def wait_points(vm: VictoriaMetrics, want: int, stall_s: float = 60.0) -> int:
    """Poll VictoriaMetrics until `want` reading points are stored (or no progress)."""
    last, last_change = -1, time.monotonic()
    while True:
        got = vm.count(f'reading_lel{{site="{SITE}"}}')
        if got >= want:
            return got
        if got != last:
            last, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return got
        time.sleep(0.1)


def check_points(vm: VictoriaMetrics, want: int, failures: Failures) -> None:
    samples = vm.samples(f'reading_lel{{site="{SITE}"}}')
    distinct = {(dict(s[1])["device"], s[2]) for s in samples}
    failures.check(
        len(samples) == want and len(distinct) == want,
        f"whole run: {len(samples):,} points stored, {len(distinct):,} distinct, {want:,} accepted",
    )


def lane_reconnects(gw: GatewayProcess) -> int:
    b = gw.health()["broker"]
    return int(b["reconnects"]) + sum(int(v) for v in b["lane_reconnects"].values())


def gateway_burst(
    pub: Path,
    port: int,
    qos: int,
    n: int,
    devices: int,
    gw: GatewayProcess,
    vm: VictoriaMetrics,
    clock: Clock,
    buttons: range,
    failures: Failures,
) -> tuple[float, int]:
    """The burst through the gateway; returns its rate and how many readings it took."""
    stored_before = vm.count(f'reading_lel{{site="{SITE}"}}')
    processed0 = gw.counter("gateway_messages_total", channel="telemetry")
    received0 = gw.health()["broker"]["received"]
    reconnects0 = lane_reconnects(gw)
    live = LiveProbe(gw.url)
    probe = MqttProbe(port)
    health = HealthPoller(gw.url)
    book = AlarmPoller(gw.url, "fire_button")
    presses: dict[str, float] = {}
    t0 = time.monotonic()
    proc = publish_burst(
        pub, port, qos, n, devices, GATEWAY_TOPIC, ts0_ms=clock.take(n), wait=False
    )
    # Button presses of other devices while the burst runs, one every 0.25 s.
    for i in buttons:
        if proc.poll() is not None and len(presses) >= 3:
            break
        presses[f"btn-{i}"] = probe.publish(f"safety/{SITE}/btn-{i}/event", {"event": "pressed"})
        time.sleep(0.25)
    proc.wait()
    stored = wait_points(vm, stored_before + n, stall_s=60 if qos else 5)
    elapsed = time.monotonic() - t0
    health.stop()
    rate = n / elapsed
    processed = gw.counter("gateway_messages_total", channel="telemetry") - processed0
    received = gw.health()["broker"]["received"] - received0 - len(presses)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(b not in live.alarms for b in presses):
        time.sleep(0.05)
    press_latency = [live.alarms[b] - t for b, t in presses.items() if b in live.alarms]
    book.stop()
    raised = [book.seen[b] - t for b, t in presses.items() if b in book.seen]
    live.close()
    probe.close()
    print(f"   gateway: {rate:,.0f} msg/s ({n:,} in {elapsed:.2f} s, until readable in VM)")
    print(
        f"   GET /api/health during the burst: {describe_ms(health.latencies)}, "
        f"{health.failures} failed"
    )
    print(f"   button press -> alarm in the gateway (GET /api/alarms): {describe_ms(raised)}")
    print(
        f"   button press -> alarm on WS /api/live, after its commit: {describe_ms(press_latency)}"
    )
    failures.check(lane_reconnects(gw) == reconnects0, "no reconnect during the burst")
    failures.check(
        received == n if qos == 1 else received <= n,
        f"received {received:,} of {n:,} (QoS {qos}: the broker may drop QoS 0 only)",
    )
    failures.check(processed == received, f"processed by the rules {processed:,.0f} = received")
    failures.check(
        stored - stored_before == received, f"stored {stored - stored_before:,} = received"
    )
    failures.check(
        len(raised) == len(presses) and max(raised, default=0) <= 1.0,
        f"{len(raised)}/{len(presses)} button presses raised an alarm, each within 1 s",
    )
    failures.check(
        len(press_latency) == len(presses),
        f"{len(press_latency)}/{len(presses)} of those alarms delivered on the live feed",
    )
    failures.check(
        bool(health.latencies)
        and percentile(health.latencies, 0.99) <= 1.0
        and not health.failures,
        "/api/health p99 within 1 s",
    )
    return rate, received


def latency_under_load(
    pub: Path,
    port: int,
    rate: float,
    devices: int,
    gw: GatewayProcess,
    clock: Clock,
    probes: range,
    seconds: float,
    failures: Failures,
) -> int:
    """Returns how many readings it sent."""
    live = LiveProbe(gw.url)
    probe = MqttProbe(port)
    count = int(rate * seconds)
    proc = publish_burst(
        pub, port, 1, count, devices, GATEWAY_TOPIC, rate=rate, ts0_ms=clock.take(count), wait=False
    )
    sent: dict[str, float] = {}
    time.sleep(1.0)  # into the stream
    for k in probes:
        if proc.poll() is not None:
            break
        sent[str(k)] = probe.publish(
            f"safety/{SITE}/probe-gas-{k}/telemetry",
            {"ts": int(time.time() * 1000), "values": {"lel": 35.0}},
        )
        time.sleep(min(0.05, seconds / (2 * len(probes))))
    proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(probe.commands) < len(sent):
        time.sleep(0.05)
    close = [
        probe.commands[f"probe-valve-{k}"] - t
        for k, t in sent.items()
        if f"probe-valve-{k}" in probe.commands
    ]
    ws = [
        live.alarms[f"probe-gas-{k}"] - t
        for k, t in sent.items()
        if f"probe-gas-{k}" in live.alarms
    ]
    print(f"   background {rate:,.0f} readings/s (QoS 1)")
    print(f"   gas reading -> close_valve: {describe_ms(close)}  (target p99 <= 20 ms)")
    print(f"   gas reading -> alarm on WS /api/live: {describe_ms(ws)}  (target p99 <= 100 ms)")
    failures.check(
        len(close) == len(sent), f"every probe's valve commanded ({len(close)}/{len(sent)})"
    )
    live.close()
    probe.close()
    return count + len(sent)


def storm(pub: Path, port: int, detectors: int, clock: Clock, failures: Failures) -> None:
    probe = MqttProbe(port)
    t0 = time.monotonic()
    publish_burst(
        pub, port, 1, detectors, detectors, GATEWAY_TOPIC, ts0_ms=clock.take(detectors), lel=35.0
    )
    deadline = time.monotonic() + 10
    want = {f"valve-{i}" for i in range(detectors)}
    while time.monotonic() < deadline and not want <= probe.commands.keys():
        time.sleep(0.01)
    got = [probe.commands[v] - t0 for v in want if v in probe.commands]
    print(
        f"   {detectors} detectors cross level 1 at once: {len(got)} valves commanded, the last "
        f"{max(got, default=float('nan')) * 1000:.0f} ms after the first reading was sent"
    )
    failures.check(len(got) == detectors and max(got) <= 1.0, "every valve commanded within 1 s")
    probe.close()


def backlog_replay(
    pub: Path,
    port: int,
    n: int,
    devices: int,
    gw: GatewayProcess,
    vm: VictoriaMetrics,
    clock: Clock,
    failures: Failures,
) -> None:
    stored_before = vm.count(f'reading_lel{{site="{SITE}"}}')
    gw.stop()
    # queued in the gateway's persistent session while it is down
    publish_burst(pub, port, 1, n, devices, GATEWAY_TOPIC, ts0_ms=clock.take(n))
    probe = MqttProbe(port)
    t0 = time.monotonic()
    gw.start()
    up = gw.wait_ready(caught_up=False)
    sent = probe.publish(
        f"safety/{SITE}/probe-gas-{PROBES - 1}/telemetry",
        {"ts": int(time.time() * 1000), "values": {"lel": 35.0}},
    )
    valve = f"probe-valve-{PROBES - 1}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and valve not in probe.commands:
        time.sleep(0.005)
    stored = wait_points(vm, stored_before + n + 1)
    elapsed = time.monotonic() - t0
    health = gw.health()["broker"]
    print(
        f"   gateway connected {up:.2f} s after start; backlog of {n:,} readable in VM "
        f"after {elapsed:.2f} s ({n / elapsed:,.0f} msg/s including start-up)"
    )
    catch = health["catchup"]
    print(
        f"   catch-up: {catch['live_messages']} live, {catch['backlog_messages']:,} from the "
        f"backlog, {catch['duplicates']} duplicates; ended: {catch['end_reason']}"
    )
    latency = probe.commands.get(valve, float("inf")) - sent
    print(f"   gas reading published after the start -> close_valve: {latency * 1000:.1f} ms")
    failures.check(
        latency <= 1.0, "a reading published after the start closes its valve within 1 s"
    )
    failures.check(lane_reconnects(gw) == 0, "no reconnect while draining the backlog")
    failures.check(
        stored - stored_before == n + 1, f"backlog stored: {stored - stored_before:,} of {n + 1:,}"
    )
    probe.close()


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
                waited = settle(vm.proc.pid)  # VictoriaMetrics merging what the bursts wrote
                print(f"   (waited {waited:.0f} s for VictoriaMetrics to settle)")
                rate = min(r.gateway for r in runs) / 2
                seconds = 3.0 if args.smoke else 12.0
                accepted += latency_under_load(
                    pub, broker.port, rate, devices, gw, clock, range(PROBES - 1), seconds, failures
                )
            with step("storm"):
                storm(pub, broker.port, min(500, devices), clock, failures)
                accepted += min(500, devices)
            with step(f"backlog replay: {n:,} readings queued while the gateway is stopped"):
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
