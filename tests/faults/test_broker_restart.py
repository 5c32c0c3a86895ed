"""Mosquitto killed (SIGKILL) and restarted on its port, persistence on, in the middle of a
QoS 1 telemetry stream from a publisher with a persistent session: every reading reaches the
gateway exactly once (counted by its metrics) and is stored in the time series. The
readings the publisher never saw acknowledged it sends again, as new messages: the gateway
recognises them by device, `ts` and bytes (`gateway.ingest.resends`). So that there always are
some, a proxy holds back the broker's PUBACKs of the last 30 readings before the kill."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.conftest import GatewayProcess, Mosquitto, VictoriaMetrics, write_config
from tests.faults.rig import (
    AckHold,
    Publisher,
    gas_ids,
    health,
    metric,
    process_config,
    scrape,
    telemetry_processed,
    telemetry_processed_or_none,
    wait,
)

READINGS = 3000
DETECTORS = 20
RATE = 600  # readings a second: the gateway keeps up, so the kill finds little queued
# The broker's PUBACKs of the last readings before the kill are held back from the publisher
# (`AckHold`): it sends them again after the restart, though the gateway has taken them.
HELD_BEFORE_KILL = 30
SENTINEL = "safety/xingfu/gas-kitchen/telemetry"


def persistent_broker(tmp_path: Path, brokers: Callable[..., Mosquitto]) -> Mosquitto:
    store = tmp_path / "mosquitto-db"
    store.mkdir()
    extra = (
        # as root, Mosquitto would drop to its own user, who cannot write under tmp_path
        "user root\n"
        "persistence true\n"
        f"persistence_location {store}/\n"
        # saved after every change, not every 30 min (the default): what the broker held at
        # the kill, the gateway's session and its queue, is found on disk at the restart
        "autosave_on_changes true\nautosave_interval 1\n"
    )
    return brokers(tmp_path, extra=extra, name="persistent")


def test_broker_kill_9_loses_no_reading(
    tmp_path: Path,
    brokers: Callable[..., Mosquitto],
    vm: VictoriaMetrics,
    gateway_process: GatewayProcess,
) -> None:
    broker = persistent_broker(tmp_path, brokers)
    data, port = process_config(tmp_path, broker.port, detectors=DETECTORS, influx_url=vm.url)
    cfg = write_config(tmp_path / "gateway.yaml", data)
    base = f"http://127.0.0.1:{port}"
    devices = gas_ids(DETECTORS)
    t0 = int(time.time() * 1000) - 60_000

    def stored() -> list[int]:
        return [s[2] for s in vm.samples('reading_lel{site="xingfu"}')]

    with gateway_process(cfg, port, tmp_path / "gateway.log"):
        proxy = AckHold(broker.port)
        pub = Publisher(proxy.port)
        # The HTTP port answers before the bulk lane has subscribed, and a reading published
        # before its first subscription is not kept for it: the first reading is sent until
        # it is taken (its copies, same ts and bytes, are dropped as a device's resends).
        prime = orjson.dumps({"ts": t0 - 1, "values": {"lel": 0.5}})

        primes = 0

        def primed() -> int | None:
            nonlocal primes
            primes += 1
            pub.publish(SENTINEL, prime)
            return telemetry_processed_or_none(base)()

        baseline = wait(primed, 20, "the first reading taken")
        # (copies of it still on their way are dropped too, and counted as duplicates)
        try:
            start = time.monotonic()
            for i in range(READINGS):
                if i == READINGS // 3 - HELD_BEFORE_KILL:
                    proxy.holding = True
                if i == READINGS // 3:
                    # Mid-flight: readings in the publisher's window, in the broker, and on
                    # their way to the gateway; the stream goes on.
                    broker.kill()
                    killed_at = time.monotonic()
                    proxy.holding = False
                    start = killed_at - i / RATE  # the pace goes on from here
                if i == READINGS // 3 + RATE // 2:
                    broker.start()
                    down_s = time.monotonic() - killed_at
                device = devices[i % DETECTORS]
                payload = orjson.dumps({"ts": t0 + i, "values": {"lel": 1.0 + (i % 10) / 10}})
                pub.publish(f"safety/xingfu/{device}/telemetry", payload)
                # paced, never ahead of the schedule (a fixed pace, not a wait for a condition)
                ahead = start + (i + 1) / RATE - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            # (and the first reading)
            wait(lambda: pub.acked >= READINGS + 1, 30, "every publication acknowledged")
            assert pub.connects >= 2, "the publisher never lost its broker"
            # Last, after every reading was acknowledged: once the sentinel is stored, the
            # bulk session (in order) has delivered everything before it, copies included.
            pub.publish(SENTINEL, orjson.dumps({"ts": t0 + READINGS, "values": {"lel": 0.7}}))
            wait(lambda: pub.acked >= READINGS + 2, 10, "the sentinel acknowledged")
        finally:
            pub.close()
            proxy.close()
        wait(lambda: t0 + READINGS in stored(), 30, "the sentinel stored")
        processed = telemetry_processed(base) - baseline - 1
        resent = int(metric(scrape(base), "gateway_rejected_total", 'reason="duplicate"'))
        # less the first reading's copies (an undercount if some came before the subscription)
        resent = max(0, resent - (primes - 1))
        catchup = health(base)["broker"]["catchup"]

    wanted = set(range(t0, t0 + READINGS))
    deadline = time.monotonic() + 20
    while len(wanted & set(stamps := stored())) < READINGS and time.monotonic() < deadline:
        time.sleep(0.2)
    distinct = set(stamps)
    missing = sorted(ts - t0 for ts in wanted - distinct)
    lost = len(missing)
    doubled_in_series = len(stamps) - len(distinct)
    doubled = sorted({ts - t0 for ts in stamps if stamps.count(ts) > 1})
    print(
        f"broker down {down_s:.2f} s; {READINGS} readings, gateway processed {processed} "
        f"({processed - READINGS} twice), {proxy.held} PUBACKs held, "
        f"{resent} sent again and dropped, "
        f"time series {len(stamps)} samples "
        f"({doubled_in_series} doubled: {doubled[:10]}), lost {lost}; catch-up {catchup}"
    )
    assert lost == 0, f"{lost} readings lost (numbers {missing[:5]}..{missing[-5:]})"
    assert processed == READINGS, f"{processed - READINGS} readings processed twice"
    assert proxy.held and resent, "no reading was sent again: the test tested nothing new"
