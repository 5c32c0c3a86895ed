"""The burst benchmark's phases through the gateway, each with its checks: the burst itself
with health and button-press latency (`gateway_burst`), latency at half that rate
(`latency_under_load`), detectors crossing level 1 at once (`storm`) and backlog replay
(`backlog_replay`); and what they share: device timestamps that are never reused (`Clock`),
the list of failed checks (`Failures`), counting the points in VictoriaMetrics.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.harness import (
    SITE,
    AlarmPoller,
    GatewayProcess,
    HealthPoller,
    LiveProbe,
    MqttProbe,
    describe_ms,
    percentile,
    publish_burst,
)
from simulator.testbed import VictoriaMetrics

GATEWAY_TOPIC = "safety/bench/gas-%d/telemetry"
PROBES = 200


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


def wait_taken_stored(
    vm: VictoriaMetrics, gw: GatewayProcess, stored_before: int, received_before: int
) -> tuple[int, float]:
    """Until every reading the gateway has received is stored and it has received nothing
    more for a second (or 5 s without progress); the stored count and when it was reached.
    Waiting for all `n` would wait out the stall for every reading the broker dropped."""
    last, changed_at = -1, time.monotonic()
    reached_at: float | None = None
    while True:
        taken = gw.health()["broker"]["received"] - received_before
        stored = vm.count(f'reading_lel{{site="{SITE}"}}')
        now = time.monotonic()
        if taken != last:
            last, changed_at, reached_at = taken, now, None
        if stored - stored_before >= taken:
            reached_at = reached_at or now
            if now - changed_at >= 1.0:
                return stored, reached_at
        elif now - changed_at > 5.0:
            return stored, now
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
    if qos:
        stored = wait_points(vm, stored_before + n)
        elapsed = time.monotonic() - t0
    else:  # the broker may drop QoS 0: done when what the gateway took is stored
        stored, done_at = wait_taken_stored(vm, gw, stored_before, received0 + len(presses))
        elapsed = done_at - t0
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
