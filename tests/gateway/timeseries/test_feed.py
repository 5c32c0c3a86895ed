"""The time-series feed against a real VictoriaMetrics (Debian's `victoria-metrics`), started
on a free port by the fixture and stopped by PID: the enqueue path, batches with their tags,
values and times, an outage and a restart, a hanging server.

Every point is read back through VictoriaMetrics' export API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import socket
import time
from pathlib import Path
from typing import Any

from gateway.timeseries.lines import reading_line, status_line
from rules.model import DeviceRef, Reading
from tests.conftest import Sample, VictoriaMetrics, until
from tests.support.timeseries import (
    Stream,
    influx,
    labels,
    make_feed,
    numeric,
    recent_ms,
    running,
    snapshot,
)


# -------------------------------------------------------------------- enqueue
async def test_the_enqueue_fast_path_writes_exactly_the_line_protocol(tmp_path: Path) -> None:
    feed = make_feed(influx("http://127.0.0.1:9"), tmp_path / "outbox.db")
    odd = DeviceRef("幸福 院,东=区", 'gas "1"\\')
    readings = [
        Reading(odd, {"temp_c_1": 30.0, "lel": 12.5}, 1.7e9),
        Reading(odd, {"lel": 1e-05}, 1.7e9 + 1),
        Reading(DeviceRef("s", "d"), {"lel": 3.0, "co_ppm": 4.0}, 1.7e9 + 2),
        Reading(DeviceRef("s", "d"), {"lel": 3.0}, 1.7e9 + 3),
    ]
    for r in readings:
        feed.reading(r, "gas detector")
    feed.reading(readings[3], "another type")  # a changed type is a new series key
    feed.device_status(odd.site, odd.device, True, False, 1.7e9 + 4)
    written = [item[3] for item in feed._buffer.peek(10)]
    expected = [reading_line(r, "gas detector") for r in readings]
    assert written == [
        *expected,
        reading_line(readings[3], "another type"),
        status_line(odd.site, odd.device, True, False, 1.7e9 + 4),
    ]


async def test_enqueue_never_raises_on_bad_input(tmp_path: Path, caplog: Any) -> None:
    feed = make_feed(influx("http://127.0.0.1:9"), tmp_path / "outbox.db")
    event = snapshot(1, 0, value=math.nan)  # a value that is no number: left out
    no_time = dataclasses.replace(event.alarm, updated_at=math.nan)
    feed.alarm(dataclasses.replace(event, alarm=no_time))
    feed.device_status("s", "d", True, False, math.nan)
    feed.reading(Reading(DeviceRef("s", "d"), {"lel": 1.0}, math.inf), "gas_detector")
    stats = feed.stats()
    assert stats["encode_errors"] == 2
    assert stats["buffered"] == 1  # the alarm without a usable time got the clock's
    (line,) = [item[3] for item in feed._buffer.peek(10)]
    assert line.startswith("alarm,") and "value=" not in line
    assert sum("cannot encode" in r.message for r in caplog.records) == 2  # once per kind
    assert sum("without usable updated_at" in r.message for r in caplog.records) == 1


# ------------------------------------------------------------ VictoriaMetrics
async def test_batches_arrive_with_tags_values_and_times(
    vm: VictoriaMetrics, tmp_path: Path
) -> None:
    base = recent_ms()
    feed = make_feed(influx(vm.url, batch_size=50), tmp_path / "outbox.db")
    expected: list[Sample] = []
    quantities = {
        ("gas-1", "gas_detector"): ("lel",),
        ("efm-1", "electrical_fire_monitor"): ("residual_ma", "temp_c_1", "temp_c_2"),
        ("co-1", "co_detector"): ("co_ppm",),
    }
    devices = list(quantities)
    async with running(feed):
        points = 0
        for i in range(240):
            device, dtype = devices[i % 3]
            ts = base + i * 1000
            values = {q: i + 0.25 * j for j, q in enumerate(quantities[device, dtype])}
            feed.reading(Reading(DeviceRef("xingfu", device), values, ts / 1000), dtype)
            points += 1
            key = labels(site="xingfu", device=device, type=dtype)
            expected += [(f"reading_{q}", key, ts, v) for q, v in values.items()]
            if i % 40 == 0:  # alarms in all three states, one without a value (a button)
                state = ("active", "cleared", "closed")[i // 40 % 3]
                value = None if i == 80 else 20.0 + i
                alarm_type = "fire_button" if value is None else "gas_leak"
                feed.alarm(snapshot(i, ts + 500, state, value, device=device, type=alarm_type))
                feed.device_status("xingfu", device, online=i != 120, fault=i == 200, at=ts / 1000)
                points += 2
                akey = labels(
                    site="xingfu", device=device, alarm_type=alarm_type, severity="critical"
                )
                code = {"active": 2.0, "cleared": 1.0, "closed": 0.0}[state]
                expected += [
                    ("alarm_state_code", akey, ts + 500, code),
                    ("alarm_acked", akey, ts + 500, float(state != "active")),
                ]
                if value is not None:
                    expected.append(("alarm_value", akey, ts + 500, value))
                skey = labels(site="xingfu", device=device)
                expected += [
                    ("device_status_online", skey, ts, float(i != 120)),
                    ("device_status_fault", skey, ts, float(i == 200)),
                ]
            if i % 60 == 0:
                await asyncio.sleep(0.1)  # several batches, some full, some by the timer
        await until(lambda: feed.stats()["written"] == points, 10, "every point written")
        stats = feed.stats()
    assert stats["connected"] is True
    assert stats["batches"] >= points // 50
    assert stats["outbox_points"] == 0 and stats["replayed"] == 0 and stats["spilled"] == 0

    got = vm.samples('{__name__=~"reading_.*|alarm_.*|device_status_.*"}')
    assert numeric(got) == sorted(expected)  # every point, once, with its tags, value, time
    # What VM made of the string fields: a 0-valued series, or nothing in later versions.
    strings = [s for s in got if s[0] in ("alarm_state", "alarm_alarm_id")]
    assert all(s[3] == 0 for s in strings)


async def test_tags_with_spaces_commas_equals_backslashes_and_chinese(
    vm: VictoriaMetrics, tmp_path: Path
) -> None:
    base = recent_ms()
    site = "城区 幸福,养老=服务中心"
    device = 'gas "1"\\厨房\\'  # a trailing backslash must not swallow the next comma
    dtype = "gas detector, 可燃气体"
    feed = make_feed(influx(vm.url), tmp_path / "outbox.db")
    async with running(feed):
        feed.reading(Reading(DeviceRef(site, device), {"lel": 7.5}, base / 1000), dtype)
        feed.reading(Reading(DeviceRef(site, "line\nbreak"), {"lel": 1.0}, base / 1000), dtype)
        feed.alarm(snapshot(1, base, value=21.0, site=site, device=device, id='x"\\'))
        feed.device_status(site, device, online=True, fault=True, at=base / 1000)
        await until(lambda: feed.stats()["written"] == 4, 10, "points written")
    got = numeric(vm.samples('{__name__=~"reading_.*|alarm_.*|device_status_.*"}'))
    akey = labels(site=site, device=device, alarm_type="gas_leak", severity="critical")
    assert got == sorted(
        [
            ("reading_lel", labels(site=site, device=device, type=dtype), base, 7.5),
            # a newline cannot be inside a tag: it is written as the two characters \n
            ("reading_lel", labels(site=site, device="line\\nbreak", type=dtype), base, 1.0),
            ("alarm_value", akey, base, 21.0),
            ("alarm_state_code", akey, base, 2.0),
            ("alarm_acked", akey, base, 0.0),
            ("device_status_online", labels(site=site, device=device), base, 1.0),
            ("device_status_fault", labels(site=site, device=device), base, 1.0),
        ]
    )


async def test_outage_and_restart_lose_and_duplicate_nothing(
    vm: VictoriaMetrics, tmp_path: Path, caplog: Any
) -> None:
    """Points flow, the server stops mid-stream, points keep coming, the gateway restarts
    while the server is down, more points, the server returns: every point is in VM once."""
    caplog.set_level(logging.INFO, logger="gateway.timeseries")
    outbox = tmp_path / "data" / "tsfeed.db"
    settings = influx(vm.url, batch_size=40, flush_interval=0.05)
    stream = Stream(recent_ms())
    first = make_feed(settings, outbox)
    async with running(first):
        producer = asyncio.create_task(stream.produce(lambda: first, 0, 400))
        await until(lambda: first.written >= 100, 10, "first points written")
        await asyncio.to_thread(vm.stop)  # mid-stream
        stopped_at = stream.count
        await producer
        assert first.written < stopped_at < stream.count  # points before, during and after
        await stream.produce(lambda: first, 400, 200)  # the server is down
        await until(lambda: first.stats()["connected"] is False, 10, "outage noticed")
        await until(lambda: first.stats()["outbox_points"] > 0, 10, "outbox used")
    # closed while the server is down (a gateway restart): nothing left in memory
    assert first.stats()["buffered"] == 0
    left = first.stats()["outbox_points"]
    assert first.written + left == stream.count
    assert first.stats()["dropped_readings"] == 0

    second = make_feed(settings, outbox)
    async with running(second):
        assert second.stats()["outbox_points"] == left  # loaded from disk
        await stream.produce(lambda: second, 600, 100)  # still down: behind the outbox
        producer = asyncio.create_task(stream.produce(lambda: second, 700, 150))
        await asyncio.to_thread(vm.start)  # same port, same data
        await producer
        await until(
            lambda: second.stats()["outbox_points"] == 0 and second.stats()["buffered"] == 0,
            20,
            "outbox drained",
        )
        await until(
            lambda: first.written + second.written == stream.count, 10, "every point written"
        )
        assert second.replayed >= left

    got = numeric(vm.samples('{__name__=~"reading_.*|alarm_.*|device_status_.*"}'))
    assert len(got) == len(stream.expected)  # no duplicates
    assert got == sorted(stream.expected)  # and nothing lost
    messages = [r.message for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 2  # once per feed, not per retry
    assert any("reachable again" in m for m in messages)


async def test_enqueue_never_waits_for_a_hanging_server(tmp_path: Path) -> None:
    # Accepts connections (the kernel completes the handshake) and never answers.
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    try:
        settings = influx(f"http://127.0.0.1:{hang.getsockname()[1]}", timeout=1.0)
        feed = make_feed(settings, tmp_path / "outbox.db")
        base = recent_ms() / 1000
        ref = DeviceRef("xingfu", "gas-1")
        async with running(feed):
            started = time.perf_counter()
            # (below the soft bound, past which the buffer would go to the outbox unasked)
            for i in range(50_000):
                feed.reading(Reading(ref, {"lel": float(i % 100)}, base + i / 1000), "gas")
            burst = time.perf_counter() - started
            assert feed.stats()["buffered"] == 50_000
            await asyncio.sleep(0.2)  # the writer is now stuck in a request to the server
            started = time.perf_counter()
            for i in range(50_000, 60_000):
                feed.reading(Reading(ref, {"lel": 1.0}, base + i / 1000), "gas")
                feed.alarm(snapshot(i, int(base * 1000) + i, value=1.0))
            during = time.perf_counter() - started
        print(
            f"\n50k readings enqueued in {burst * 1000:.0f} ms ({burst * 20:.2f} µs each); "
            f"10k readings + 10k alarms while a write hangs: {during * 1000:.0f} ms"
        )
        stats = feed.stats()
        assert stats["connected"] is False  # the write timed out
        assert stats["buffered"] == 0
        assert stats["outbox_points"] == 70_000  # nothing lost
    finally:
        hang.close()
