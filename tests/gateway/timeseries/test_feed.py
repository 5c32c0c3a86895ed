"""The time-series feed against a real VictoriaMetrics (Debian's `victoria-metrics`), started
on a free port by the fixture and stopped by PID, and against a stand-in InfluxDB v2 endpoint
where a test needs answers VictoriaMetrics never gives (400, 503, 401).

Every point is read back through VictoriaMetrics' export API. VM names a series
`<measurement>_<field>` and turns tags into labels; it keeps numbers only (1.79 stores a
string field as the value 0), which is why the `alarm` measurement carries `state_code` and
`acked` as integers beside the `state` and `alarm_id` strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.alarms.book import Action, AlarmState
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.config.schema import InfluxSection
from gateway.timeseries.feed import TimeSeriesFeed
from gateway.timeseries.lines import alarm_line, reading_line, status_line
from rules.model import AlarmType, DeviceRef, Reading, Severity
from tests.conftest import Sample, VictoriaMetrics, free_port, until

ZONE = ZoneInfo("Asia/Shanghai")


# ------------------------------------------------------------------ servers
class FakeInflux:
    """An InfluxDB v2 write endpoint whose answer the test chooses (`mode`).

    ok: 204; down: 503; auth: 401; reject_all: 400; and in every mode but down/auth a
    request containing `poison` gets 400, as InfluxDB answers a malformed line."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.delay_s = 0.0  # a slow server: each answer waits this long
        self.accepted: list[str] = []  # lines of the requests answered 204, in order
        self.requests: list[tuple[int, int]] = []  # (status, number of lines)
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                lines = body.split("\n")
                time.sleep(fake.delay_s)
                with fake.lock:
                    status = fake.answer(self.path, lines)
                    fake.requests.append((status, len(lines)))
                    if status == 204:
                        fake.accepted.extend(lines)
                if status == 204:
                    self.send_response(204)
                    self.end_headers()
                    return
                payload = json.dumps(
                    {"code": "invalid", "message": f"unable to parse '{lines[0][:40]}'"}
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, lines: list[str]) -> int:
        assert path.startswith("/api/v2/write?"), path
        if self.mode == "down":
            return 503
        if self.mode == "auth":
            return 401
        if self.mode == "reject_all" or any("poison" in line for line in lines):
            return 400
        return 204

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    server = FakeInflux()
    try:
        yield server
    finally:
        server.close()


# ------------------------------------------------------------------ helpers
def influx(url: str, **overrides: Any) -> InfluxSection:
    values: dict[str, Any] = {
        "url": url,
        "org": "minzheng",
        "bucket": "safety",
        "batch_size": 50,
        "flush_interval": 0.05,
        "timeout": 2.0,
    }
    values.update(overrides)
    return InfluxSection.model_validate(values)


def make_feed(settings: InfluxSection, outbox: Path) -> TimeSeriesFeed:
    feed = TimeSeriesFeed(settings, None, outbox)
    # seconds, not a minute: the tests bring servers back and wait for the replay
    feed.BACKOFF_INITIAL_S = 0.05
    feed.BACKOFF_MAX_S = 0.3
    return feed


@contextlib.asynccontextmanager
async def running(feed: TimeSeriesFeed) -> AsyncIterator[TimeSeriesFeed]:
    """open, run, and at the end stop it the way the supervisor does: cancel, then close."""
    await feed.open()
    task = asyncio.create_task(feed.run())
    try:
        yield feed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await feed.close()


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, ZONE).isoformat(timespec="milliseconds")


def snapshot(
    i: int, at_ms: int, state: str = "active", value: float | None = None, **kw: str
) -> AlarmEvent:
    """An alarm change as the fan-out hands it to the feed."""
    f = {"id": f"A-{i:05d}", "site": "xingfu", "device": f"gas-{i % 3}", "type": "gas_leak"}
    f.update(kw)
    alarm = AlarmSnapshot(
        id=f["id"],
        site=f["site"],
        device=f["device"],
        type=AlarmType(f["type"]),
        severity=Severity.CRITICAL,
        state=AlarmState(state),
        raised_at=at_ms / 1000,
        level="level_1",
        latched=False,
        acked=state != "active",
        value=value,
        peak=value,
        count=1,
        reason=None,
        acked_at=None,
        acked_by=None,
        cleared_at=None,
        closed_at=None,
        closed_by=None,
        disposition=None,
        note=None,
        updated_at=at_ms / 1000,
    )
    return AlarmEvent(Action.RAISED, alarm)


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def recent_ms() -> int:
    """A base time an hour ago, whole seconds: inside VM's retention, not in its future."""
    return (int(time.time()) - 3600) * 1000


def outbox_rows(path: Path) -> list[tuple[int, str, str]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return list(db.execute("SELECT id, kind, line FROM outbox ORDER BY id"))


class Stream:
    """Numbered points of all three kinds, and the samples VM must hold for them."""

    def __init__(self, base_ms: int) -> None:
        self.base_ms = base_ms
        self.expected: list[Sample] = []
        self.lines: list[str] = []  # line protocol, in production order
        self.count = 0

    def emit(self, feed: TimeSeriesFeed, i: int) -> None:
        ts = self.base_ms + i * 1000
        device = f"gas-{i % 4}"
        r = Reading(DeviceRef("xingfu", device), {"lel": float(i)}, ts / 1000)
        feed.reading(r, "gas_detector")
        self.lines.append(reading_line(r, "gas_detector") or "")
        self.expected.append(
            ("reading_lel", labels(site="xingfu", device=device, type="gas_detector"), ts, i)
        )
        if i % 25 == 0:
            snap = snapshot(i, ts + 1, value=float(i))
            feed.alarm(snap)
            self.lines.append(alarm_line(snap.alarm, ts + 1))
            key = labels(
                site="xingfu", device=snap.alarm.device, alarm_type="gas_leak", severity="critical"
            )
            self.expected += [
                ("alarm_value", key, ts + 1, float(i)),
                ("alarm_state_code", key, ts + 1, 2.0),
                ("alarm_acked", key, ts + 1, 0.0),
            ]
        if i % 40 == 0:
            feed.device_status(
                "xingfu", device, online=i % 80 == 0, fault=False, at=ts / 1000 + 0.002
            )
            self.lines.append(status_line("xingfu", device, i % 80 == 0, False, ts / 1000 + 0.002))
            key = labels(site="xingfu", device=device)
            self.expected += [
                ("device_status_online", key, ts + 2, 1.0 if i % 80 == 0 else 0.0),
                ("device_status_fault", key, ts + 2, 0.0),
            ]
        self.count = len(self.lines)

    async def produce(
        self, feed: Callable[[], TimeSeriesFeed], start: int, n: int, every: float = 0.002
    ) -> None:
        for i in range(start, start + n):
            self.emit(feed(), i)
            await asyncio.sleep(every)


def numeric(samples: list[Sample]) -> list[Sample]:
    """VM keeps string fields as 0-valued series: leave them out of comparisons."""
    return [s for s in samples if s[0] not in ("alarm_state", "alarm_alarm_id")]


# ------------------------------------------------------------ line protocol text
def test_line_protocol_text_and_escaping() -> None:
    r = Reading(DeviceRef("幸福 院,东=区", 'gas "1"\\'), {"temp_c_1": 30.0, "lel": 12.5}, 1.7e9)
    assert reading_line(r, "gas detector") == (
        r'reading,device=gas\ "1"\\,site=幸福\ 院\,东\=区,type=gas\ detector '
        "lel=12.5,temp_c_1=30.0 1700000000000"
    )
    snap = snapshot(1, 0, state="cleared", value=None, id='a"b\\c\nd', site="s", device="d")
    assert alarm_line(snap.alarm, 1_700_000_000_123) == (
        "alarm,alarm_type=gas_leak,device=d,severity=critical,site=s "
        r'acked=1i,alarm_id="a\"b\\c\nd",state="cleared",state_code=1i 1700000000123'
    )
    assert status_line("s", "d", True, False, 1_700_000_000.0004) == (
        "device_status,device=d,site=s fault=0i,online=1i 1700000000000"
    )
    # a reading with nothing finite to say is no point at all
    assert reading_line(Reading(DeviceRef("s", "d"), {}, 1.0), "t") is None


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


# ------------------------------------------------------------------ VictoriaMetrics
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


async def test_outbox_bound_drops_oldest_readings_never_alarms(
    vm: VictoriaMetrics, tmp_path: Path, caplog: Any
) -> None:
    outbox = tmp_path / "tsfeed.db"
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = influx(down, outbox_max_points=1000, batch_size=100, flush_interval=0.02)
    stream = Stream(recent_ms())
    feed = make_feed(settings, outbox)
    async with running(feed):
        for chunk in range(15):  # 3000 readings, 120 alarms, 75 status points
            for i in range(chunk * 200, chunk * 200 + 200):
                stream.emit(feed, i)
            # let the writer move them to the outbox (the bound under test is the outbox's)
            await until(lambda: feed.stats()["buffered"] == 0, 10, "points in the outbox")
    stats = feed.stats()
    assert stats["outbox_points"] == 1000
    assert stats["outbox"] == {"readings": 1000 - 120 - 75, "alarms": 120, "status": 75}
    readings = [line for line in stream.lines if line.startswith("reading,")]
    assert stats["dropped_readings"] == len(readings) - 805
    assert stats["dropped_status"] == 0
    kept = set(readings[-805:])  # the newest readings
    assert [row[2] for row in outbox_rows(outbox)] == [
        line for line in stream.lines if not line.startswith("reading,") or line in kept
    ]  # every alarm and status point, the newest readings, in production order
    assert sum("dropping the oldest" in r.message for r in caplog.records) == 1

    # Another gateway run, the server reachable: the outbox arrives, exactly.
    replay = make_feed(influx(vm.url, outbox_max_points=1000, batch_size=100), outbox)
    async with running(replay):
        await until(lambda: replay.stats()["outbox_points"] == 0, 10, "replayed")
    assert replay.replayed == 1000
    got = numeric(vm.samples('{__name__=~"reading_.*|alarm_.*|device_status_.*"}'))
    assert got == sorted(s for s in stream.expected if s[0] != "reading_lel" or s[3] >= 2195)


async def test_full_outbox_drops_status_after_readings_and_keeps_every_alarm(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "tsfeed.db"
    feed = make_feed(
        influx(f"http://127.0.0.1:{free_port()}", outbox_max_points=1000, batch_size=100),
        outbox,
    )
    base = recent_ms() / 1000
    async with running(feed):
        for i in range(1500):
            if i % 3 == 0:
                feed.reading(Reading(DeviceRef("s", "d"), {"lel": float(i)}, base + i), "gas")
            elif i % 3 == 1:
                feed.alarm(snapshot(i, int((base + i) * 1000), value=float(i)))
            else:
                feed.device_status("s", "d", online=True, fault=False, at=base + i)
            if i % 100 == 99:
                await until(lambda: feed.stats()["buffered"] == 0, 10, "in the outbox")
    stats = feed.stats()
    # 500 each; 1000 fit: every reading goes, then the oldest status points
    assert stats["outbox"] == {"readings": 0, "alarms": 500, "status": 500}
    assert (stats["dropped_readings"], stats["dropped_status"]) == (500, 0)
    feed2 = make_feed(
        influx(f"http://127.0.0.1:{free_port()}", outbox_max_points=1000, batch_size=100),
        outbox,
    )
    async with running(feed2):
        for i in range(1500, 1800):  # 300 more alarms: status points make room for them
            feed2.alarm(snapshot(i, int((base + i) * 1000), value=float(i)))
        await until(lambda: feed2.stats()["buffered"] == 0, 10, "in the outbox")
        for i in range(1800, 2300):  # and more alarms than the bound: all kept
            feed2.alarm(snapshot(i, int((base + i) * 1000), value=float(i)))
        await until(lambda: feed2.stats()["buffered"] == 0, 10, "in the outbox")
    assert feed2.stats()["outbox"] == {"readings": 0, "alarms": 1300, "status": 0}
    assert feed2.stats()["dropped_status"] == 500
    rows = outbox_rows(outbox)
    assert [r[1] for r in rows] == ["alarm"] * 1300
    assert [int(r[2].rsplit(" ", 1)[1]) for r in rows] == sorted(
        int(r[2].rsplit(" ", 1)[1]) for r in rows
    )  # in order


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


async def test_a_server_slower_than_the_intake_loses_nothing_and_gets_large_requests(
    fake: FakeInflux, tmp_path: Path
) -> None:
    fake.delay_s = 0.05
    feed = make_feed(influx(fake.url, batch_size=50), tmp_path / "o.db")
    feed.MEMORY_SOFT_POINTS = 2_000  # past it, memory goes to the outbox, in order
    stream = Stream(recent_ms())
    async with running(feed):
        for i in range(20_000):
            stream.emit(feed, i)
            if i % 1000 == 999:
                await asyncio.sleep(0)  # the writer gets its turns
        await until(lambda: len(fake.accepted) == len(stream.lines), timeout=60, what="all written")
    stats = feed.stats()
    assert fake.accepted == stream.lines  # every point, once, in order
    assert stats["spilled"] > 0 and stats["dropped_readings"] == 0
    assert max(n for _, n in fake.requests) > 50  # behind, a request carries more


# ---------------------------------------------------------- stand-in InfluxDB answers
async def test_a_rejected_point_is_dropped_and_counted_not_retried_forever(
    fake: FakeInflux, tmp_path: Path, caplog: Any
) -> None:
    feed = make_feed(influx(fake.url, batch_size=40, flush_interval=0.05), tmp_path / "o.db")
    stream = Stream(recent_ms())
    async with running(feed):
        for i in range(40):
            if i == 17:  # InfluxDB answers 400 to the whole batch for one bad line
                r = Reading(DeviceRef("xingfu", "poison"), {"lel": 1.0}, stream.base_ms / 1000)
                feed.reading(r, "gas_detector")
            else:
                stream.emit(feed, i)
        await until(lambda: feed.stats()["buffered"] == 0, 10, "batch settled")
        for i in range(40, 80):  # and the feed goes on
            stream.emit(feed, i)
        await until(lambda: feed.stats()["written"] == stream.count, 10, "the rest written")
    assert fake.accepted == stream.lines  # every good point, once, in order
    stats = feed.stats()
    assert stats["rejected"] == 1 and stats["outbox_points"] == 0 and stats["connected"]
    # the first batch is split in halves around the bad point: a handful of requests
    assert len(fake.requests) <= 2 * math.ceil(math.log2(len(stream.lines))) + 4
    warnings = [r.message for r in caplog.records if "rejected" in r.message]
    assert len(warnings) == 1 and "poison" in warnings[0] and "HTTP 400" in warnings[0]


async def test_a_server_rejecting_everything_does_not_make_the_feed_loop(
    fake: FakeInflux, tmp_path: Path, caplog: Any
) -> None:
    fake.mode = "reject_all"
    feed = make_feed(influx(fake.url, batch_size=20), tmp_path / "o.db")
    stream = Stream(recent_ms())
    async with running(feed):
        for i in range(20):
            stream.emit(feed, i)
        n = stream.count
        await until(lambda: feed.stats()["rejected"] == n, 10, "every point settled")
        requests = len(fake.requests)
        await asyncio.sleep(0.5)
        assert len(fake.requests) == requests  # and then quiet
    assert requests <= 2 * n - 1  # at most a full split, once
    assert feed.stats()["buffered"] == 0 and feed.stats()["outbox_points"] == 0
    assert sum("rejected a point" in r.message for r in caplog.records) == 1


async def test_order_is_kept_through_503_401_and_a_restart(
    fake: FakeInflux, tmp_path: Path
) -> None:
    """The stand-in records the order in which lines were accepted: exactly production order."""
    outbox = tmp_path / "tsfeed.db"
    settings = influx(fake.url, batch_size=30, flush_interval=0.03)
    stream = Stream(recent_ms())
    feed = make_feed(settings, outbox)
    async with running(feed):
        await stream.produce(lambda: feed, 0, 100, every=0.001)
        fake.mode = "down"  # 503
        await stream.produce(lambda: feed, 100, 150, every=0.001)
        await until(lambda: feed.stats()["outbox_points"] > 0, 10, "outbox used")
    fake.mode = "auth"  # 401: a configuration problem, the data is kept meanwhile
    feed = make_feed(settings, outbox)
    async with running(feed):
        await stream.produce(lambda: feed, 250, 100, every=0.001)
        await until(lambda: "401" in (feed.stats()["last_error"] or ""), 10, "401 seen")
        fake.mode = "ok"
        await stream.produce(lambda: feed, 350, 100, every=0.001)
        await until(
            lambda: feed.stats()["outbox_points"] == 0 and feed.stats()["buffered"] == 0,
            10,
            "drained",
        )
    assert fake.accepted == stream.lines
    assert {status for status, _ in fake.requests} == {204, 401, 503}
