"""The writer against a stand-in InfluxDB v2 endpoint, for answers VictoriaMetrics never gives
(400, 503, 401) and a server slower than the intake."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.timeseries.writer import Backoff
from rules.model import DeviceRef, Reading
from tests.conftest import until
from tests.support.timeseries import (
    FakeInflux,
    Stream,
    influx,
    make_feed,
    recent_ms,
    running,
)


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    server = FakeInflux()
    try:
        yield server
    finally:
        server.close()


# -------------------------------------------------- stand-in InfluxDB answers
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


# -------------------------------------------------------------------- backoff
def test_backoff_doubles_up_to_the_cap_and_honours_retry_after_within_its_own_cap() -> None:
    backoff = Backoff(initial_s=1.0, max_s=60.0, retry_after_max_s=300.0)
    assert [backoff.delay(n, None, jitter=1.0) for n in (1, 2, 3, 7, 100)] == [
        1.0,
        2.0,
        4.0,
        60.0,
        60.0,
    ]
    assert backoff.delay(3, None, jitter=0.5) == 2.0  # jitter shortens, never lengthens
    assert backoff.delay(1, 120.0, jitter=1.0) == 120.0  # the server asks for longer
    assert backoff.delay(1, 10_000.0, jitter=1.0) == 300.0  # but not for ever
    assert backoff.delay(7, 5.0, jitter=1.0) == 60.0  # nor shorter than the backoff
