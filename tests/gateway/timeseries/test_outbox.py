"""The outbox: its bound (the oldest readings go first, then status points; alarm points are
never dropped), order across a reopen and a replay, and a write that fails."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.storage.schemas import OUTBOX
from gateway.timeseries.buffer import KIND_ALARM, KIND_READING, KIND_STATUS, Item
from gateway.timeseries.outbox import Outbox, OutboxError
from rules.model import DeviceRef, Reading
from tests.conftest import VictoriaMetrics, free_port, until
from tests.support.timeseries import (
    Stream,
    influx,
    make_feed,
    numeric,
    outbox_rows,
    recent_ms,
    running,
    snapshot,
)


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


# ------------------------------------------------------------ the table alone
def items(kinds: str, start: int = 0) -> list[Item]:
    names = {"r": KIND_READING, "a": KIND_ALARM, "s": KIND_STATUS}
    return [(start + i, 0.0, names[k], f"{k}{start + i}") for i, k in enumerate(kinds)]


async def test_store_keeps_the_bound_dropping_readings_then_status(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", max_points=4, memory_max_points=10)
    await outbox.open()
    try:
        assert await outbox.store(items("rsar")) == {KIND_READING: 0, KIND_STATUS: 0}
        dropped = await outbox.store(items("aa", start=4))
        assert dropped == {KIND_READING: 2, KIND_STATUS: 0}
        assert outbox.counts == {KIND_READING: 0, KIND_ALARM: 3, KIND_STATUS: 1}
        assert await outbox.store(items("a", start=6)) == {KIND_READING: 0, KIND_STATUS: 1}
        rows = await outbox.oldest(10)
        assert [row[2] for row in rows] == ["a2", "a4", "a5", "a6"]  # in production order
        await outbox.remove(rows[:2])
        assert outbox.points == 2
    finally:
        await outbox.close()
    again = Outbox(tmp_path / "o.db", max_points=4, memory_max_points=10)
    await again.open()
    try:
        assert again.counts == {KIND_READING: 0, KIND_ALARM: 2, KIND_STATUS: 0}
    finally:
        await again.close()


async def test_a_failing_disk_stores_nothing_and_says_when_to_retry(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    outbox = Outbox(path, max_points=1000, memory_max_points=10)
    await outbox.open()
    try:
        # Another connection takes the table away: every write now fails, as on a bad disk.
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("DROP TABLE outbox")
            db.commit()
        with pytest.raises(OutboxError):
            await outbox.store(items("ra"))
        assert outbox.error is not None
        assert outbox.retry_at > time.monotonic()
        assert outbox.points == 0
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.executescript(OUTBOX.steps[0].sql)
        await outbox.store(items("ra"))
        assert outbox.error is None  # it can be written again
        assert outbox.points == 2
    finally:
        await outbox.close()
