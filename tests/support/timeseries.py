"""Helpers for the time-series tests: a stand-in InfluxDB v2 write endpoint whose answers a test
chooses, feeds with short retry timings, alarm snapshots, and a stream of numbered points of
every kind with the samples VictoriaMetrics must hold for them.

VM names a series `<measurement>_<field>` and turns tags into labels; it keeps numbers only
(1.79 stores a string field as the value 0), which is why the `alarm` measurement carries
`state_code` and `acked` as integers beside the `state` and `alarm_id` strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gateway.alarms.book import Action, AlarmState
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.config.schema import InfluxSection
from gateway.timeseries.feed import TimeSeriesFeed
from gateway.timeseries.lines import alarm_line, reading_line, status_line
from rules.model import AlarmType, DeviceRef, Reading, Severity
from tests.conftest import Sample


# -------------------------------------------------------------------- servers
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


# -------------------------------------------------------------------- helpers
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
