"""Device status and availability (gateway.status): one implementation, so the bureau
overview and the daily report agree; and the store's history reads they are fed from."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from gateway.alarms.book import Action, AlarmBook, Disposition
from gateway.alarms.rows import AlarmRow, CommandRecord, LifecycleEntry
from gateway.alarms.store import AlarmStore
from gateway.report.figures import availability as report_availability
from gateway.report.model import DeviceInfo, Period
from gateway.status.availability import alarm_intervals as alarm_offline_intervals
from gateway.status.availability import availability as overview_availability
from gateway.status.availability import row_intervals
from gateway.status.device import DeviceState, device_state, state_from_alarms
from rules.engine import DeviceStatus
from rules.model import AlarmChange, AlarmKey, AlarmType, ChangeKind, DeviceRef, Reason, Severity

H = 3600.0
START = 1_800_000_000.0
END = START + 24 * H


def T(hours: float) -> float:
    return START + hours * H


def _offline_row(
    events: tuple[tuple[float, Action], ...], state: str, cleared_at: float | None = None
) -> AlarmRow:
    return AlarmRow(
        "A1", "s", "d", AlarmType.DEVICE_OFFLINE.value, "minor", state, events[0][0],
        cleared_at=cleared_at,
        events=tuple(LifecycleEntry(at, action.value, "system", "minor") for at, action in events),
    )  # fmt: skip


# ================================================= one timeline, two readers, one rate
def test_overview_and_report_give_one_online_rate_for_one_timeline() -> None:
    # Offline 2 h, then 3 h. The `repeated` entries change nothing: one on the active alarm
    # (another event of it), one after the clear (a stray, as a partial mirror may hold):
    # only raised/returned start an offline interval (DESIGN section 6, AlarmBook).
    row = _offline_row(
        (
            (T(2), Action.RAISED),
            (T(3), Action.REPEATED),
            (T(4), Action.CLEARED),
            (T(6), Action.REPEATED),
            (T(10), Action.RETURNED),
            (T(13), Action.CLEARED),
        ),
        "cleared",
        cleared_at=T(13),
    )
    expected = (24 - 5) / 24

    # The bureau overview, its window being the report's period.
    ref = DeviceRef("s", "d")
    events = [(e.at, e.action) for e in row.events]
    offline = {
        ref: alarm_offline_intervals(
            row.raised_at, row.state, row.cleared_at, row.closed_at, events, END
        )
    }
    overview = overview_availability([ref], offline, START, END)

    # The daily report, over the same period.
    period = Period(date(2026, 11, 24), START, END, END)
    device = DeviceInfo("s", "d", "gas_detector", "厨房")
    rows, site_rate = report_availability([device], [row], period, {})
    (report,) = rows

    assert overview.offline_s == report.offline_s == 5 * H
    assert report.online_rate == site_rate == round(expected, 6)
    assert overview.rate == round(expected, 4)
    assert report.online_rate is not None and round(report.online_rate, 4) == overview.rate


def test_report_and_overview_agree_on_a_still_active_alarm() -> None:
    row = _offline_row(((T(20), Action.RAISED), (T(21), Action.ACKED)), "active")
    period = Period(date(2026, 11, 24), START, END, END)
    (report,), _ = report_availability([DeviceInfo("s", "d", "co_detector", "")], [row], period, {})
    overview = overview_availability(["d"], {"d": row_intervals(row, END)}, START, END)
    assert report.offline_s == overview.offline_s == 4 * H
    assert overview.rate == round(20 / 24, 4)


def test_intervals_keep_the_store_order_of_entries_made_at_one_instant() -> None:
    # Returned and cleared again within one clock tick, closed later: offline for nothing
    # after the first clear (sorting by action name too would run it to the close).
    row = _offline_row(
        ((100.0, Action.RAISED), (200.0, Action.CLEARED), (300.0, Action.RETURNED),
         (300.0, Action.CLEARED), (400.0, Action.CLOSED)),
        "closed",
        cleared_at=300.0,
    )  # fmt: skip
    assert row_intervals(row, 1000.0) == [(100.0, 200.0)]


# ==================================================================== device status
@pytest.mark.parametrize(
    ("online", "fault", "last_seen", "state"),
    [
        (True, False, 10.0, DeviceState.ONLINE),
        (True, True, 10.0, DeviceState.FAULT),
        (True, False, None, DeviceState.UNKNOWN),  # not heard since start-up, not overdue
        (False, True, 10.0, DeviceState.OFFLINE),  # silent: its fault flag is stale
        (False, False, None, DeviceState.OFFLINE),
    ],
)
def test_device_state_from_the_engine(
    online: bool, fault: bool, last_seen: float | None, state: DeviceState
) -> None:
    assert device_state(DeviceStatus(online, fault, last_seen, {})) is state


def test_device_state_from_stored_alarms() -> None:
    def alarm(type_: AlarmType, raised: float, cleared: float | None) -> AlarmRow:
        events = [LifecycleEntry(raised, "raised", "system")]
        if cleared is not None:
            events.append(LifecycleEntry(cleared, "cleared", "system"))
        state = "active" if cleared is None else "cleared"
        return AlarmRow("x", "s", "d", type_.value, "minor", state, raised, events=tuple(events))

    offline = alarm(AlarmType.DEVICE_OFFLINE, 100.0, None)
    fault = alarm(AlarmType.DEVICE_FAULT, 50.0, 300.0)
    gas = alarm(AlarmType.GAS_LEAK, 10.0, None)
    assert state_from_alarms([], 500.0) is DeviceState.ONLINE
    assert state_from_alarms([gas], 500.0) is DeviceState.ONLINE
    assert state_from_alarms([fault, gas], 200.0) is DeviceState.FAULT
    assert state_from_alarms([fault], 300.0) is DeviceState.ONLINE  # cleared at that instant
    assert state_from_alarms([fault, offline], 200.0) is DeviceState.OFFLINE
    assert state_from_alarms([offline], 99.0) is DeviceState.ONLINE


# ============================================================ the store's history reads
@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlarmStore]:
    st = AlarmStore(tmp_path / "alarms.sqlite3")
    await st.open()
    writer = asyncio.create_task(st.run_writer())
    try:
        yield st
    finally:
        st.stop()
        await writer
        await st.close()


def _change(device: str, type_: AlarmType, kind: ChangeKind) -> AlarmChange:
    reason = Reason.RETURNED_TO_NORMAL if kind is ChangeKind.CLEAR else Reason.SILENT
    return AlarmChange(AlarmKey("s", device, type_), kind, Severity.MINOR, reason)


async def test_history_reads_return_typed_rows_as_the_book_has_them(store: AlarmStore) -> None:
    book = AlarmBook(new_id=iter(f"A{n}" for n in range(1, 10)).__next__)
    steps = [
        ("d1", AlarmType.DEVICE_OFFLINE, ChangeKind.RAISE, T(1)),
        ("d1", AlarmType.DEVICE_OFFLINE, ChangeKind.CLEAR, T(2)),
        ("d1", AlarmType.DEVICE_OFFLINE, ChangeKind.RAISE, T(5)),  # returned
        ("d2", AlarmType.DEVICE_FAULT, ChangeKind.RAISE, T(3)),
        ("d3", AlarmType.DEVICE_OFFLINE, ChangeKind.RAISE, T(-5)),
        ("d3", AlarmType.DEVICE_OFFLINE, ChangeKind.CLEAR, T(-4)),
    ]
    for device, type_, kind, at in steps:
        write = book.apply(_change(device, type_, kind), at)
        assert write is not None
        store.submit_alarm(write, {})
    d3 = next(a for a in book.open_alarms() if a.device == "d3")
    store.submit_alarm(book.close(d3.id, "王值班", Disposition.REAL, None, T(-3)), {})
    store.submit_command(CommandRecord("c1", "s", "v", "close_valve", "system", None, None, T(1)))
    store.submit_command(CommandRecord("c2", "s", "v", "reset", "王值班", None, None, T(1)))
    store.submit_command(CommandRecord("c3", "t", "v", "close_valve", "system", None, None, T(1)))
    assert await store.flush(5)

    # d3's alarm was closed before the window: not read. d2's is not an offline alarm.
    offline = await store.offline_alarm_history(["s"], START, T(6))
    assert [r.device for r in offline] == ["d1"]
    (d1,) = offline
    assert d1 == AlarmRow.of(next(a for a in book.open_alarms() if a.device == "d1"))
    assert [e.action for e in d1.events] == ["raised", "cleared", "returned"]
    assert row_intervals(d1, math.inf) == [(T(1), T(2)), (T(5), math.inf)]

    everything = await store.alarm_history(["s"], T(-10), T(6))
    assert [(r.device, r.type) for r in everything] == [
        ("d3", "device_offline"),
        ("d1", "device_offline"),
        ("d2", "device_fault"),
    ]
    assert await store.alarm_history([], START, T(6)) == []

    sent = await store.commands_sent(["s"], ["close_valve", "trip"], START, END)
    assert [c.id for c in sent] == ["c1"]
