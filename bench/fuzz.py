"""Hostile input: random and malformed MQTT messages while real readings flow.

The gateway runs as `safety-gateway run` (its own process) against its own Mosquitto and
VictoriaMetrics. It decides for one site (real gas detectors, and detectors the fuzz aims at)
and observes a second one served by an edge gateway, so the central topics (mirrored alarms,
edge commands, presence, bridge state) are open to forgeries too. One real reading goes out
for every nine hostile messages: wrong JSON, wrong types, NaN and Infinity, huge numbers,
1 MiB payloads (over `mqtt.max_payload_bytes`; the test broker sets no message size limit),
unknown sites, devices, quantities and events, odd topics, forged alarms and presences.

Checked: the gateway stays up and `GET /api/health` answers throughout; every real reading is
in VictoriaMetrics exactly once; rejections are counted by reason (`gateway_rejected_total`).
Printed: messages/s offered, rejections by reason, real readings processed, API latency.

    python bench/fuzz.py [--messages 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import GatewayProcess, HealthPoller, describe_ms, step
from simulator.devices import nodelay
from simulator.testbed import Mosquitto, VictoriaMetrics, free_port

SITE = "fuzz"
EDGE_SITE = "edge-site"
EDGE_GW = "edge-1"
REAL = 10  # real gas detectors: their series hold real readings only
TARGETS = 10  # detectors (with valves) and buttons the fuzz aims at
ONE_MIB = 1 << 20

# Reasons a run of a few thousand messages must have counted (rarer ones may be absent).
EXPECTED_REASONS = {
    "malformed_json",
    "wrong_type",
    "not_finite",
    "out_of_range",
    "unknown_quantity",
    "unknown_event",
    "unknown_device",
    "oversize",
    "empty",
    "unknown_gateway",
}


def config(workdir: Path, mqtt_port: int, http_port: int, influx: str) -> Path:
    devices: list[dict[str, Any]] = []
    for prefix in ("real", "target"):
        for i in range(REAL if prefix == "real" else TARGETS):
            devices += [
                {
                    "id": f"{prefix}-gas-{i}",
                    "type": "gas_detector",
                    "location": f"room {i}",
                    "shutoff_valve": f"{prefix}-valve-{i}",
                },
                {"id": f"{prefix}-valve-{i}", "type": "gas_valve", "location": f"room {i}"},
            ]
    devices += [{"id": f"target-btn-{i}", "type": "alarm_button", "location": "hall"}
                for i in range(TARGETS)]  # fmt: skip
    devices.append({"id": "target-efm", "type": "electrical_fire_monitor", "location": "room"})
    edge_devices = [
        {"id": "edge-btn", "type": "alarm_button", "location": "hall"},
        {"id": "edge-gas", "type": "gas_detector", "location": "kitchen"},
    ]
    data: dict[str, Any] = {
        "gateway": {"id": "fuzz-gw", "data_dir": str(workdir / "data")},
        "http": {"host": "127.0.0.1", "port": http_port},
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "topic_prefix": "safety"},
        "influx": {"url": influx, "org": "fuzz", "bucket": "fuzz", "flush_interval": "100 ms"},
        "sites": [
            {"id": SITE, "name": "fuzz", "kind": "other", "devices": devices},
            {
                "id": EDGE_SITE,
                "name": "edge",
                "kind": "other",
                "served_by": "edge",
                "edge_gateway": EDGE_GW,
                "devices": edge_devices,
            },
        ],
    }
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------- payloads
class Hostile:
    """Hostile messages, drawn from `random.Random(seed)`: (kind, topic, payload)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.alarm_ids = [f"forged-{i}" for i in range(20)]

    def topic(self, device: str, channel: str, site: str = SITE) -> str:
        return f"safety/{site}/{device}/{channel}"

    def target(self) -> str:
        return f"target-gas-{self.r.randrange(TARGETS)}"

    def junk(self) -> bytes:
        r = self.r
        return r.choice(
            [
                lambda: r.randbytes(r.randrange(1, 200)),
                lambda: b'{"values": {"lel": 1',
                lambda: b"{" * r.randrange(1, 5000),  # deep nesting, unterminated
                lambda: b"[" * 100_000,
                lambda: b"\xff\xfe{}",
                lambda: b'{"values": {"lel": 1.0}, }',
                lambda: b'{"values": {"lel": "\\u0000"}}',
                lambda: b"null",
            ]
        )()

    def value(self) -> Any:
        r = self.r
        return r.choice(
            [
                "12",
                True,
                None,
                [],
                {},
                {"v": 1},
                r.uniform(-1e308, 1e308),
                10**400,
                -(10**30),
                r.randrange(-100, 3000),
                "NaN",
            ]
        )

    def message(self) -> tuple[str, str, bytes]:
        r = self.r
        kind = r.choices(
            [
                "malformed_json", "wrong_type", "not_finite", "huge", "empty",
                "unknown_device", "unknown_site", "unknown_quantity", "odd_topic", "event",
                "status", "ack", "mixed", "forged_alarm", "forged_presence", "edge_command",
                "edge_uplink",
            ],
            weights=[12, 12, 8, 8, 3, 6, 4, 6, 6, 6, 4, 4, 6, 6, 5, 3, 2],
        )[0]  # fmt: skip
        gas = self.target()
        tele = self.topic(gas, "telemetry")
        if kind == "malformed_json":
            return kind, r.choice([tele, self.topic("target-btn-0", "event")]), self.junk()
        if kind == "wrong_type":
            payload = r.choice(
                [
                    {"values": {"lel": self.value()}},
                    {"values": self.value()},
                    {"ts": self.value(), "values": {"lel": 1.0}},
                    [1, 2, 3],
                    "a string",
                    42,
                ]
            )
            return kind, tele, json.dumps(payload).encode()  # orjson refuses 10**400
        if kind == "not_finite":
            word = r.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
            return kind, tele, f'{{"values": {{"lel": {word}}}}}'.encode()
        if kind == "huge":
            number = r.choice(["1e308", "-1e308", "9" * 400, "1e-320", str(2**64)])
            q = r.choice(["lel", "co_ppm", "temp_c", "open"])
            return kind, tele, f'{{"values": {{"{q}": {number}}}}}'.encode()
        if kind == "empty":
            return kind, r.choice([tele, self.topic("target-btn-1", "event")]), b""
        if kind == "unknown_device":
            return (
                kind,
                self.topic(f"ghost-{r.randrange(10**6)}", "telemetry"),
                b'{"values":{"lel":1}}',
            )
        if kind == "unknown_site":
            return (
                kind,
                f"safety/nowhere-{r.randrange(99)}/{gas}/telemetry",
                b'{"values":{"lel":1}}',
            )
        if kind == "unknown_quantity":
            q = r.choice(["radon", "humidity", "lel2", "temp_c_17", "", "值"])
            return kind, tele, orjson.dumps({"values": {q: 1.0}})
        if kind == "odd_topic":
            topic = r.choice(
                [
                    f"safety/{SITE}/{gas}/telemetry/extra",
                    f"safety/{SITE}//telemetry",
                    f"safety/{SITE}/{gas}/weird",
                    f"safety/{SITE}/{gas}/cmd",
                    f"safety/{SITE}/{'x' * 200}/telemetry",
                    "safety/%/+/telemetry".replace("+", "plus"),
                    f"safety/{SITE}/设备/telemetry",
                    "safety",
                    f"safety/{SITE}/alarms",
                ]
            )
            return kind, topic, b'{"values":{"lel":1}}'
        if kind == "event":
            event = r.choice(["exploded", "", "PRESSED", 7, None, "pressed" * 50])
            device = r.choice([f"target-btn-{r.randrange(TARGETS)}", gas, "target-efm"])
            return kind, self.topic(device, "event"), orjson.dumps({"event": event})
        if kind == "status":
            payload = r.choice([b"maybe", b"", b"ONLINE", b'{"status": 1}', r.randbytes(8)])
            return kind, self.topic(gas, "status"), payload
        if kind == "ack":
            valve = f"target-valve-{r.randrange(TARGETS)}"
            payload = r.choice(
                [{"id": str(r.random()), "ok": True}, {"id": 5}, {"ok": "yes"}, [], {"id": ""}]
            )
            return kind, self.topic(valve, "cmd/ack"), orjson.dumps(payload)
        if kind == "mixed":  # one good quantity beside bad ones: only the good one is used
            return (
                kind,
                tele,
                orjson.dumps(
                    {"values": {"lel": r.uniform(0, 5), "co_ppm": "x", "temp_c": 5000, "zz": 1}}
                ),
            )
        if kind == "forged_alarm":
            return kind, f"safety/{r.choice([EDGE_SITE, SITE])}/alarms", self.forged_alarm()
        if kind == "forged_presence":
            gw = r.choice([f"evil-{r.randrange(1000)}", EDGE_GW, "fuzz-gw"])
            status = r.choice(["online", "offline", "", 3])
            sites = r.choice([[EDGE_SITE], [SITE], [], "x"])
            payload = orjson.dumps({"gateway": gw, "status": status, "sites": sites})
            if r.random() < 0.3:
                payload = self.junk()
            # never the real edge's own id as an online/offline flip-flop beyond its topic
            return kind, f"safety/gateways/{gw}", payload
        if kind == "edge_command":
            payload = orjson.dumps(
                {"id": str(r.random()), "site": r.choice([EDGE_SITE, SITE]),
                 "device": r.choice(["edge-gas", "nope"]), "cmd": r.choice(["close_valve", 1])}
            )  # fmt: skip
            return kind, f"safety/{EDGE_SITE}/commands", payload
        return kind, f"safety/{EDGE_SITE}/bridge", r.choice([b"1", b"0", b"2", b"", b"x"])

    def oversize(self, size: int) -> tuple[str, str, bytes]:
        """A reading of `size` bytes: 1 MiB is over `mqtt.max_payload_bytes` (rejected as
        oversize), 3 MiB over the link's 2 MiB cut (skipped as it arrives)."""
        pad = "x" * (size - 40)
        kind = "oversize" if size <= 2 * ONE_MIB else "over_2mib"
        payload = orjson.dumps({"values": {"lel": 1.0}, "pad": pad})
        return kind, self.topic(self.target(), "telemetry"), payload

    def forged_alarm(self) -> bytes:
        r = self.r
        alarm: dict[str, Any] = {
            "id": r.choice([*self.alarm_ids, "bad id!", "", "x" * 200]),
            "site": r.choice([EDGE_SITE, EDGE_SITE, SITE, "nowhere"]),
            "device": r.choice(["edge-btn", "edge-gas", "ghost"]),
            "type": r.choice(["fire_button", "gas_leak", "made_up"]),
            "severity": r.choice(["critical", "major", "minor", "apocalyptic"]),
            "state": r.choice(["active", "cleared", "closed", "weird"]),
            "count": r.choice([1, 2, 0, -1, "3"]),
            "value": r.choice([None, 1.5, "NaN"]),
            "raised_at": r.choice(
                ["2026-12-01T10:00:00+08:00", "2026-12-01T10:00:00", "yesterday", 5]
            ),
        }
        for key in r.sample(sorted(alarm), r.randrange(0, 3)):
            del alarm[key]
        return orjson.dumps(alarm)


# ------------------------------------------------------------------- the run
class Sender:
    """One paho client at QoS 1 (a persistent session), counting the broker's PUBACKs and
    keeping at most `WINDOW` publications unacknowledged (paho's own queue stalled with 60,000
    waiting)."""

    WINDOW = 2000

    def __init__(self, port: int, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.acked = 0
        self.sent = 0
        self.disconnects = 0
        self.progress = threading.Condition()
        self.client.on_publish = self._acked
        self.client.on_disconnect = self._disconnected
        self.client.connect("127.0.0.1", port)
        nodelay(self.client)
        self.client.loop_start()

    def _acked(self, *_: Any) -> None:
        with self.progress:
            self.acked += 1
            self.progress.notify_all()

    def _disconnected(self, *_: Any) -> None:
        self.disconnects += 1

    def send(self, topic: str, payload: bytes) -> None:
        with self.progress:
            if not self.progress.wait_for(lambda: self.sent - self.acked < self.WINDOW, 60):
                raise SystemExit(f"FAIL: no PUBACK for 60 s ({self.acked} of {self.sent})")
        self.client.publish(topic, payload, qos=1)
        self.sent += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"FAIL: timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def rejects(gw: GatewayProcess) -> dict[str, int]:
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    out: dict[str, int] = {}
    prefix = 'gateway_rejected_total{reason="'
    for line in text.splitlines():
        if line.startswith(prefix):
            out[line[len(prefix) :].split('"', 1)[0]] = int(float(line.split()[-1]))
    return out


def run(messages: int, seed: int, workdir: Path) -> int:
    broker = Mosquitto(workdir)
    vm = VictoriaMetrics(workdir)
    broker.start()
    vm.start()
    http_port = free_port()
    gw = GatewayProcess(
        config(workdir, broker.port, http_port, vm.url), http_port, workdir / "gateway.log"
    )
    failures: list[str] = []
    try:
        gw.start()
        gw.wait_ready()
        hostile = Hostile(seed)
        plan: list[tuple[str, str, bytes]] = []
        real = 0
        ts0 = int(time.time() * 1000) - messages - 60_000
        for i in range(messages):
            if i % 10 == 0:
                device = f"real-gas-{real % REAL}"
                payload = orjson.dumps({"ts": ts0 + real, "values": {"lel": 1.0 + real % 7 / 10}})
                plan.append(("real", f"safety/{SITE}/{device}/telemetry", payload))
                real += 1
            elif i % 20_000 == 7:
                plan.append(hostile.oversize(3 * ONE_MIB))  # past the link's 2 MiB cut
            elif i % 2000 == 5:
                plan.append(hostile.oversize(ONE_MIB))
            else:
                plan.append(hostile.message())
        # and a real reading last: once it is stored, everything before it was taken
        payload = orjson.dumps({"ts": ts0 + real, "values": {"lel": 1.0}})
        plan.append(("real", f"safety/{SITE}/real-gas-0/telemetry", payload))
        real += 1
        messages = len(plan)
        kinds = Counter(kind for kind, _, _ in plan)
        sender = Sender(broker.port, f"fuzz-{seed}")
        poller = HealthPoller(gw.url, every_s=0.1)
        with step(f"{messages} messages, {real} of them real readings (seed {seed})"):
            t = time.monotonic()
            for _, topic, payload in plan:
                sender.send(topic, payload)
            wait_for(lambda: sender.acked >= messages, 600, "the broker's PUBACKs")
            offered = time.monotonic() - t
            # the real readings are the gateway's proof of having taken everything before
            series = 'reading_lel{site="fuzz",device=~"real-gas-.*"}'

            def stored() -> int:
                return vm.count(series, "1d") >= real

            wait_for(stored, 300, "every real reading in VictoriaMetrics")
            took = time.monotonic() - t
            poller.stop()
        sender.close()
        samples = vm.samples(series)
        stamps = [s[2] for s in samples]
        missing = real - len(set(stamps) & set(range(ts0, ts0 + real)))
        doubled = len(stamps) - len(set(stamps))
        health = gw.health()
        counted = rejects(gw)
        print(f"offered {messages / offered:,.0f} msgs/s ({offered:.1f} s); everything taken "
              f"after {took:.1f} s: {messages / took:,.0f} msgs/s")  # fmt: skip
        print("kinds sent: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        print("rejected by reason: " + ", ".join(f"{k} {n}" for k, n in sorted(counted.items())))
        print(f"oversize dropped by the link (over 2 MiB): {health['broker']['oversize_dropped']}")
        print(f"real readings: {real} sent, {len(set(stamps))} processed and stored, "
              f"{missing} missing, {doubled} doubled")  # fmt: skip
        log_lines = gw.log.read_text(errors="replace").splitlines()
        rejected_lines = sum(" gateway.rejected: " in line for line in log_lines)
        print(f"gateway log: {len(log_lines)} lines, {rejected_lines} of them rejections "
              f"({gw.log.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
        print(f"publisher disconnects: {sender.disconnects}")
        print(f"GET /api/health during the run: {describe_ms(poller.latencies)}, "
              f"{poller.failures} failed")  # fmt: skip
        print(f"health at the end: {health['status']}, internal errors "
              f"{health['internal_errors']}, task restarts {health['task_restarts']}, "
              f"reconnects {health['broker']['reconnects']}")  # fmt: skip
        if gw.proc is None or gw.proc.poll() is not None:
            failures.append("the gateway exited")
        if sender.disconnects > 1:  # the one of close()
            failures.append(f"the publisher was disconnected {sender.disconnects - 1} times")
        if missing or doubled:
            failures.append(f"real readings: {missing} missing, {doubled} doubled")
        if poller.failures or not poller.latencies:
            failures.append(f"health failed {poller.failures} times")
        if health["internal_errors"]:
            failures.append(f"{health['internal_errors']} internal errors")
        if health["broker"]["reconnects"]:
            failures.append(f"{health['broker']['reconnects']} reconnects")
        absent = sorted(r for r in EXPECTED_REASONS if not counted.get(r))
        cut = health["broker"]["oversize_dropped"]
        if cut != kinds["over_2mib"]:
            failures.append(f"{kinds['over_2mib']} messages over 2 MiB sent, {cut} cut")
        if absent:
            failures.append(f"reasons never counted: {absent}")
        if "Traceback" in gw.log.read_text(errors="replace"):
            failures.append("a traceback in the gateway's log")
    finally:
        gw.stop()
        vm.stop()
        broker.stop()
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        sys.exit(run(args.messages, args.seed, Path(tmp)))


if __name__ == "__main__":
    main()
