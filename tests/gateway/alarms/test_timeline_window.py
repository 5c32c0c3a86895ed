"""Issue 10, bounded growth: repeats of an alarm update it, and its timeline keeps the first
and last N plain repeats (`rules.timeline_repeats`), the rest elided and counted.

The book (pure), the store (real SQLite: the elided rows are deleted in the same commit,
and a restart numbers on after the gap), and the gateway with a real broker: 3,000 presses
of one button."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.alarms.book import Action, AlarmBook, AlarmWrite
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.alarms.store import AlarmStore
from gateway.alarms.wire import ELIDED, timeline_json
from gateway.config.clockface import Clockface
from gateway.config.loading import parse_config
from rules.model import AlarmChange, AlarmKey, AlarmType, ChangeKind, Reason, Severity
from tests.conftest import Mosquitto, Probe, running_gateway, site_config, until
from tests.support.config import problems_of

T0 = 1_795_000_000.0
KEY = AlarmKey("xingfu", "btn-lobby", AlarmType.FIRE_BUTTON)
CLOCK = Clockface("Asia/Shanghai")


def press(severity: Severity = Severity.CRITICAL) -> AlarmChange:
    return AlarmChange(KEY, ChangeKind.RAISE, severity, Reason.BUTTON_PRESSED, latched=True)


def actions(book: AlarmBook) -> list[str]:
    alarm = book.find(KEY)
    assert alarm is not None
    return [e.action.value for e in alarm.timeline]


def test_plain_repeats_keep_the_first_and_last_n_and_count_all() -> None:
    book = AlarmBook(repeats_kept=3)
    writes = [book.apply(press(), T0 + i) for i in range(20)]
    alarm = book.find(KEY)
    assert alarm is not None
    assert alarm.count == 20
    repeats = [e for e in alarm.timeline if e.action is Action.REPEATED]
    assert [e.at - T0 for e in repeats] == [1, 2, 3, 17, 18, 19]
    assert alarm.repeats.elided == 13
    assert alarm.next_seq == 20
    # The write of each repeat past the window elides the oldest of the last n, once.
    elided = [seq for w in writes if w is not None for seq in w.elided]
    assert elided == list(range(4, 17))


def test_other_entries_and_repeats_that_change_something_are_never_elided() -> None:
    book = AlarmBook(repeats_kept=1)
    book.apply(press(Severity.MAJOR), T0)
    for i in range(5):
        book.apply(press(Severity.MAJOR), T0 + 1 + i)
    alarm = book.find(KEY)
    assert alarm is not None
    book.ack(alarm.id, "王值班", None, T0 + 10)
    book.apply(press(Severity.MAJOR), T0 + 11)  # re-opens the acknowledged alarm: kept
    book.apply(press(Severity.CRITICAL), T0 + 12)  # raises the severity: kept
    for i in range(5):
        book.apply(press(), T0 + 13 + i)
    book.annotate(alarm.id, Action.NOTIFY_ATTEMPT, T0 + 20, {"ok": True})
    assert actions(book) == [
        "raised",
        "repeated",  # the first plain one
        "acked",
        "repeated",  # re-opened
        "repeated",  # more severe
        "repeated",  # the last plain one
        "notify_attempt",
    ]
    assert alarm.count == 13
    # The plain repeats between the first and the last: 4 before the ack, 4 after.
    assert alarm.repeats.elided == 8


def test_the_json_marks_each_gap_with_how_many_were_elided() -> None:
    book = AlarmBook(repeats_kept=2)
    for i in range(10):
        book.apply(press(), T0 + i)
    alarm = book.find(KEY)
    assert alarm is not None
    out = timeline_json(alarm.timeline, CLOCK)
    assert [e["action"] for e in out] == [
        "raised",
        "repeated",
        "repeated",
        ELIDED,
        "repeated",
        "repeated",
    ]
    marker = out[3]
    assert marker["detail"]["count"] == 5
    assert marker["detail"]["after"] == CLOCK.iso(T0 + 2)
    assert marker["detail"]["before"] == CLOCK.iso(T0 + 8)


def test_the_window_size_is_validated_in_the_configuration() -> None:
    data: dict[str, Any] = site_config(Path("/tmp/x"), 1883)
    data["rules"]["timeline_repeats"] = 0
    assert any("timeline_repeats" in p for p in problems_of(data))
    data["rules"]["timeline_repeats"] = 4
    assert parse_config(data).rules.timeline_repeats == 4
    with pytest.raises(ValueError, match="at least 1"):
        AlarmBook(repeats_kept=0)


def _event(w: AlarmWrite) -> AlarmEvent:
    return AlarmEvent(w.action, AlarmSnapshot.of(w.alarm))


async def test_the_store_deletes_elided_rows_in_the_same_commit_and_numbers_on_after_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alarms.sqlite3"
    store = AlarmStore(path)
    await store.open()
    writer = None
    try:
        writer = asyncio.create_task(store.run_writer())
        book = AlarmBook(repeats_kept=2)
        for i in range(50):
            w = book.apply(press(), T0 + i)
            assert w is not None
            store.submit_alarm(w, _event(w))
        assert await store.flush(5.0)
        alarm = book.find(KEY)
        assert alarm is not None
        rows = sqlite3.connect(path).execute(
            "SELECT seq, action FROM alarm_timeline WHERE alarm_id = ? ORDER BY seq", (alarm.id,)
        )
        assert [r[0] for r in rows] == [0, 1, 2, 48, 49]

        # A restart: the book reloads the alarm, finds its window again and numbers on.
        loaded = await store.get(alarm.id)
        assert loaded is not None
        assert loaded.count == 50
        assert loaded.next_seq == 50 and loaded.repeats.elided == 45
        again = AlarmBook(repeats_kept=2)
        again.load([loaded])
        w = again.apply(press(), T0 + 60)
        assert w is not None
        assert (w.first_seq, w.elided) == (50, (48,))
        store.submit_alarm(w, _event(w))
        assert await store.flush(5.0)
        rows = sqlite3.connect(path).execute(
            "SELECT seq FROM alarm_timeline WHERE alarm_id = ? ORDER BY seq", (alarm.id,)
        )
        assert [r[0] for r in rows] == [0, 1, 2, 49, 50]
        stored = await store.get(alarm.id)
        assert stored is not None and stored.count == 51
    finally:
        store.stop()
        if writer is not None:
            await writer
        await store.close()


async def test_three_thousand_presses_make_one_small_alarm(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    data = site_config(tmp_path / "data", broker.port)
    data["rules"]["timeline_repeats"] = 10
    async with running_gateway(parse_config(data)) as running:
        for _ in range(3_000):
            await probe.event("btn-lobby", "pressed")

        def pressed() -> int:
            alarm = running.gw.book.find(KEY)
            return alarm.count if alarm is not None else 0

        await until(lambda: pressed() >= 3_000, 60, "3,000 presses counted")
        assert await running.gw.store.flush(10.0)
        alarm = running.gw.book.find(KEY)
        assert alarm is not None
        r = await running.api.get(f"/api/alarms/{alarm.id}")
        assert r.status_code == 200
        body = r.json()
        # The raise is the first press; every later one a repeat.
        assert body["count"] == 3_000
        assert body["timeline_elided"] == 3_000 - 1 - 20
        steps = [e["action"] for e in body["timeline"]]
        assert steps.count("repeated") == 20
        marker = next(e for e in body["timeline"] if e["action"] == ELIDED)
        assert marker["detail"]["count"] == 2_979
        assert len(r.content) < 16_000, f"{len(r.content)} bytes"
        db = sqlite3.connect(tmp_path / "data" / "alarms.sqlite3")
        (rows,) = db.execute(
            "SELECT count(*) FROM alarm_timeline WHERE alarm_id = ?", (alarm.id,)
        ).fetchone()
        assert rows == 1 + 20
        (count,) = db.execute("SELECT count FROM alarms WHERE id = ?", (alarm.id,)).fetchone()
        assert count == 3_000
