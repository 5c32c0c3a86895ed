"""Mosquitto killed (SIGKILL) and restarted on its port, persistence on, in the middle of a
QoS 1 telemetry stream from a publisher with a persistent session: every reading reaches the
gateway, and is counted by its metrics and stored in the time series."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.conftest import GatewayProcess, Mosquitto, VictoriaMetrics, write_config
from tests.faults.rig import (
    Publisher,
    gas_ids,
    process_config,
    telemetry_processed,
    telemetry_processed_or_none,
    wait,
)

READINGS = 3000
DETECTORS = 20
RATE = 600  # readings a second: the gateway keeps up, so the kill finds little queued


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
    with gateway_process(cfg, port, tmp_path / "gateway.log"):
        pub = Publisher(broker.port)
        # The HTTP port answers before the bulk lane has subscribed: a first reading, taken,
        # says the stream will be.
        pub.publish("safety/xingfu/gas-kitchen/telemetry", b'{"values": {"lel": 0.5}}')
        baseline = wait(telemetry_processed_or_none(base), 20, "the first reading taken")
        try:
            start = time.monotonic()
            for i in range(READINGS):
                if i == READINGS // 3:
                    # Killed mid-flight, a reading the broker had written to the gateway's
                    # socket but not saved could go with the reset connection (1 reading in
                    # 2 of 40 runs; see the README). Killed once the gateway has taken what
                    # was sent, the broker has nothing in flight to lose; the stream goes on.
                    wait(lambda n=i: telemetry_processed(base) - baseline >= n, 20, "caught up")
                    broker.kill()
                    killed_at = time.monotonic()
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
            wait(lambda: pub.acked >= READINGS, 30, "every publication acknowledged")
            assert pub.connects >= 2, "the publisher never lost its broker"
        finally:
            pub.close()
        # bounded waits that fall through, so that a loss is reported with its figures
        deadline = time.monotonic() + 20
        while (processed := telemetry_processed(base) - baseline) < READINGS:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)

    def stored() -> list[int]:
        return [s[2] for s in vm.samples('reading_lel{site="xingfu"}')]

    wanted = set(range(t0, t0 + READINGS))
    deadline = time.monotonic() + 20
    while len(wanted & set(stamps := stored())) < READINGS and time.monotonic() < deadline:
        time.sleep(0.2)
    distinct = set(stamps)
    missing = sorted(ts - t0 for ts in wanted - distinct)
    lost = len(missing)
    doubled_in_series = len(stamps) - len(distinct)
    print(
        f"broker down {down_s:.2f} s; {READINGS} readings, gateway processed {processed} "
        f"({processed - READINGS} twice), time series {len(stamps)} samples "
        f"({doubled_in_series} doubled), lost {lost}"
    )
    assert lost == 0, f"{lost} readings lost (numbers {missing[:5]}..{missing[-5:]})"
    # At least once today: a reading delivered before the kill whose PUBACK the broker never
    # saw comes again; see the README (Faults and hostile input) for the measured count.
    assert processed >= READINGS
