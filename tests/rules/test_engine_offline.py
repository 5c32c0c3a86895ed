"""rules/engine.py: devices offline, stale readings, electrical fire, CO.

Every entry point takes `now`; here the Rig's offset from the start. No sleeps, no real
time, no mocks: tests.support.rules_rig's `Rig` feeds the real engine and records what comes
out.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rules import defaults
from rules.model import (
    AlarmKey,
    AlarmType,
    ChangeKind,
    Command,
    CommandKind,
    DeviceRef,
    DeviceType,
    EventKind,
    Outcome,
    Reason,
    Severity,
)
from tests.support.rules_rig import (
    BUTTON,
    CO_DET,
    EFM,
    GAS,
    GAS_KEY,
    GAS_STALE,
    SITE,
    SMOKE,
    T0,
    VALVE,
    Feed,
    Rig,
    dev,
    gas,
    gas_changes,
    of_type,
    valve,
)

# =========================================================================== offline


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (GAS, lambda rig, t: rig.reading(t, GAS, lel=0.0)),
        (GAS, lambda rig, t: rig.event(t, GAS, EventKind.SELF_TEST)),
        (GAS, lambda rig, t: rig.avail(t, GAS, True)),
        (VALVE, lambda rig, t: rig.result(t, ok=True)),
        (VALVE, lambda rig, t: rig.reading(t, VALVE, open=0)),
        (BUTTON, lambda rig, t: rig.event(t, BUTTON, EventKind.SELF_TEST)),
    ],
)
def test_offline_status_raises_at_once_and_any_message_clears_it(
    ref: DeviceRef, message: Callable[[Rig, float], Outcome]
) -> None:
    rig = Rig()
    out = rig.avail(5, ref, False)
    (change,) = out.changes
    assert change.key == AlarmKey(ref.site, ref.device, AlarmType.DEVICE_OFFLINE)
    assert (change.kind, change.severity, change.reason) == (
        ChangeKind.RAISE,
        Severity.MINOR,
        Reason.STATUS_OFFLINE,
    )
    assert not rig.engine.status(ref).online
    assert rig.avail(6, ref, False).changes == []  # said twice: still one alarm
    rig.run(10)
    out = message(rig, 10.5)
    offline = of_type(out, AlarmType.DEVICE_OFFLINE)
    assert [(c.kind, c.reason) for c in offline] == [(ChangeKind.CLEAR, Reason.BACK_ONLINE)]
    assert rig.engine.status(ref).online
    assert rig.kinds(AlarmType.DEVICE_OFFLINE, ref) == [ChangeKind.RAISE, ChangeKind.CLEAR]


def test_offline_status_then_silence_is_still_one_alarm() -> None:
    rig = Rig()
    rig.avail(0, GAS, False)
    rig.run(500)
    assert rig.kinds(AlarmType.DEVICE_OFFLINE, GAS) == [ChangeKind.RAISE]
    rig.reading(500.5, GAS, lel=0.0)
    assert rig.kinds(AlarmType.DEVICE_OFFLINE, GAS) == [ChangeKind.RAISE, ChangeKind.CLEAR]


@pytest.mark.parametrize(
    ("ref", "type_"),
    [
        (GAS, DeviceType.GAS_DETECTOR),
        (VALVE, DeviceType.GAS_VALVE),
        (CO_DET, DeviceType.CO_DETECTOR),
        (EFM, DeviceType.ELECTRICAL_FIRE_MONITOR),
        (BUTTON, DeviceType.ALARM_BUTTON),
        (SMOKE, DeviceType.SMOKE_DETECTOR),
    ],
)
@pytest.mark.parametrize("heard_at", [None, 50.0])
def test_silence_raises_device_offline_after_the_stale_window(
    ref: DeviceRef, type_: DeviceType, heard_at: float | None
) -> None:
    stale = defaults.REPORT_INTERVAL_S[type_] * defaults.OFFLINE_AFTER_INTERVALS
    rig = Rig()
    start = 0.0
    if heard_at is not None:
        rig.run(heard_at)
        rig.avail(heard_at, ref, True)
        start = heard_at
    # never heard from: silence is measured from start-up, not "offline at once"
    rig.run(start + stale)
    assert rig.seen(AlarmType.DEVICE_OFFLINE, ref=ref) == []
    assert rig.engine.status(ref).online
    rig.run(start + stale + 1)
    ((t, change),) = rig.seen(AlarmType.DEVICE_OFFLINE, ref=ref)
    assert t == start + stale + 1
    assert (change.kind, change.severity, change.reason) == (
        ChangeKind.RAISE,
        Severity.MINOR,
        Reason.SILENT,
    )
    rig.run(start + 3 * stale)
    assert rig.kinds(AlarmType.DEVICE_OFFLINE, ref) == [ChangeKind.RAISE]
    out = rig.event(rig.t + 0.5, ref, EventKind.SELF_TEST)
    assert [(c.kind, c.reason) for c in out.changes] == [(ChangeKind.CLEAR, Reason.BACK_ONLINE)]
    assert rig.engine.status(ref).last_seen == T0 + rig.t


def test_status_reports_what_the_engine_believes() -> None:
    rig = Rig()
    s = rig.engine.status(GAS)
    assert (s.online, s.fault, s.last_seen, dict(s.values)) == (True, False, None, {})
    rig.reading(3, GAS, lel=4.5)
    s = rig.engine.status(GAS)
    assert s.last_seen == T0 + 3
    assert s.values == {"lel": (4.5, T0 + 3)}
    assert rig.engine.knows(GAS)
    assert not rig.engine.knows(DeviceRef(SITE, "nope"))
    assert set(rig.engine.refs()) == {GAS, VALVE, CO_DET, EFM, BUTTON, SMOKE}


def test_a_silent_detector_never_clears_an_active_gas_alarm() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    rig.reading(5, VALVE, open=0)
    rig.run(2000, feeds=[Feed(VALVE, 60, {"open": 0})])
    assert rig.kinds(AlarmType.GAS_LEAK) == [ChangeKind.RAISE]  # no CLEAR, ever
    assert [t for t, _ in rig.seen(AlarmType.DEVICE_OFFLINE, ref=GAS)] == [GAS_STALE + 1]
    # the gas alarm is still active: the valve reporting open is closed again
    out = rig.reading(2000.5, VALVE, open=1)
    assert out.commands == [
        Command(VALVE, CommandKind.CLOSE_VALVE, GAS_KEY, Reason.VALVE_REPORTED_OPEN)
    ]
    # and the detector coming back high is the same alarm, not a new one
    out = rig.reading(2001, GAS, lel=25.0)
    assert gas_changes(out) == []
    assert [c.kind for c in of_type(out, AlarmType.DEVICE_OFFLINE)] == [ChangeKind.CLEAR]


def test_a_silent_detector_in_clearing_is_not_cleared() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    rig.reading(1, GAS, lel=2.0)  # CLEARING from 1; needs fresh low values until 31
    for t in (100, 200, 1000, 5000):  # the shell was busy: the next ticks come late
        rig.tick(t)
    assert rig.kinds(AlarmType.GAS_LEAK) == [ChangeKind.RAISE]
    assert rig.kinds(AlarmType.DEVICE_OFFLINE, GAS) == [ChangeKind.RAISE]


# --------------------------------------------------------------------- stale readings


@pytest.mark.parametrize(("interval", "raised_at"), [(30.0, 10.0), (5.0, 10.0), (2.0, None)])
def test_pending_on_delay_is_not_raised_once_the_value_is_stale(
    interval: float, raised_at: float | None
) -> None:
    # residual current: on-delay 10 s; stale window = 3 x report interval
    rig = Rig([dev(EFM, DeviceType.ELECTRICAL_FIRE_MONITOR, report_interval_s=interval)])
    rig.reading(0, EFM, residual_ma=400.0)
    rig.run(300)
    got = rig.seen(AlarmType.RESIDUAL_CURRENT)
    if raised_at is None:
        assert got == []
    else:
        assert [(t, c.kind) for t, c in got] == [(raised_at, ChangeKind.RAISE)]
        assert got[0][1].severity is Severity.MAJOR
        assert got[0][1].value == 400.0


@pytest.mark.parametrize(("interval", "cleared_at"), [(30.0, 31.0), (11.0, 31.0), (5.0, None)])
def test_clearing_alarm_is_not_cleared_once_the_value_is_stale(
    interval: float, cleared_at: float | None
) -> None:
    # gas: off-delay 30 s; stale window = 3 x report interval
    rig = Rig([gas(report_interval_s=interval), valve()])
    rig.reading(0, GAS, lel=25.0)
    rig.reading(1, GAS, lel=2.0)
    rig.run(300)
    got = [(t, c.kind) for t, c in rig.seen(AlarmType.GAS_LEAK)]
    if cleared_at is None:
        assert got == [(0, ChangeKind.RAISE)]
    else:
        assert got == [(0, ChangeKind.RAISE), (cleared_at, ChangeKind.CLEAR)]


def test_after_silence_one_low_reading_does_not_clear_at_once() -> None:
    """The off-delay must be served by fresh low values: low, silence, then one low value
    restarts the off-delay instead of clearing on the spot."""
    rig = Rig([gas(report_interval_s=5.0), valve()])
    rig.reading(0, GAS, lel=25.0)
    rig.reading(1, GAS, lel=2.0)
    rig.run(300)
    out = rig.reading(300.5, GAS, lel=2.0)
    assert gas_changes(out) == []
    rig.run(400, feeds=[Feed(GAS, 5, {"lel": 2.0}, start=305)])
    got = [(t, c.kind) for t, c in rig.seen(AlarmType.GAS_LEAK)]
    assert got == [(0, ChangeKind.RAISE), (331, ChangeKind.CLEAR)]


# --------------------------------------------------------------------- electrical fire


def test_overtemperature_uses_the_hottest_fresh_channel() -> None:
    rig = Rig()
    rig.reading(0, EFM, residual_ma=10.0, temp_c_1=75.0, temp_c_2=40.0)
    rig.reading(5, EFM, temp_c_2=41.0)  # channel 1 is still fresh at 75 C: still pending
    rig.run(9)
    assert rig.seen(AlarmType.OVERTEMPERATURE) == []
    rig.run(10)
    ((t, raised),) = rig.seen(AlarmType.OVERTEMPERATURE)
    assert (t, raised.kind, raised.severity, raised.level) == (
        10,
        ChangeKind.RAISE,
        Severity.MAJOR,
        "alarm",
    )
    assert raised.value == 75.0
    # channel 1 falls silent; channel 2 keeps reporting 41 C. Only when channel 1 is stale
    # (90 s) does the hottest fresh value drop below 65 C, and 30 s later the alarm clears.
    rig.run(300, feeds=[Feed(EFM, 10, {"temp_c_2": 41.0, "residual_ma": 10.0}, start=10)])
    got = [(t, c.kind) for t, c in rig.seen(AlarmType.OVERTEMPERATURE)]
    assert got == [(10, ChangeKind.RAISE), (130, ChangeKind.CLEAR)]
    assert rig.seen(AlarmType.RESIDUAL_CURRENT) == []


@pytest.mark.parametrize(
    ("channels", "raised"),
    [
        ({"temp_c_1": 60.0, "temp_c_2": 71.0}, True),
        ({"temp_c_1": 71.0, "temp_c_16": 20.0}, True),
        ({"temp_c": 70.0}, True),
        ({"temp_c_1": 69.9, "temp_c_2": 69.9, "temp_c_3": 69.9}, False),
    ],
)
def test_overtemperature_channel_table(channels: dict[str, float], raised: bool) -> None:
    rig = Rig()
    rig.run(30, feeds=[Feed(EFM, 5, {"residual_ma": 0.0, **channels})])
    got = [(t, c.kind) for t, c in rig.seen(AlarmType.OVERTEMPERATURE)]
    assert got == ([(15, ChangeKind.RAISE)] if raised else [])


def test_residual_current_on_delay_and_clear() -> None:
    rig = Rig()
    rig.run(20, feeds=[Feed(EFM, 2, {"residual_ma": 350.0})])
    rig.run(120, feeds=[Feed(EFM, 2, {"residual_ma": 250.0}, start=22)])
    got = [(t, c.kind, c.severity) for t, c in rig.seen(AlarmType.RESIDUAL_CURRENT)]
    assert got == [(12, ChangeKind.RAISE, Severity.MAJOR), (52, ChangeKind.CLEAR, Severity.MAJOR)]
    assert rig.commands == []  # electrical alarms never touch the gas valve


# =========================================================================== CO


def test_co_alarm_follows_the_dose_and_clears_after_low_values() -> None:
    rig = Rig()
    rig.reading(0, CO_DET, co_ppm=300.0)
    rig.run(400, feeds=[Feed(CO_DET, 10, {"co_ppm": 300.0})])
    ((t, raised),) = rig.seen(AlarmType.CO)
    assert 90 <= t <= 91  # 90 s at 300 ppm
    assert (raised.kind, raised.severity, raised.reason) == (
        ChangeKind.RAISE,
        Severity.CRITICAL,
        Reason.CO_DOSE_REACHED,
    )
    rig.run(600, feeds=[Feed(CO_DET, 10, {"co_ppm": 10.0}, start=410)])
    got = [(t, c.kind) for t, c in rig.seen(AlarmType.CO)]
    assert got[-1] == (470, ChangeKind.CLEAR)
    assert [k for _, k in got].count(ChangeKind.RAISE) == 1


def test_co_at_30_ppm_never_alarms_in_two_hours() -> None:
    rig = Rig()
    rig.run(7200, feeds=[Feed(CO_DET, 60, {"co_ppm": 30.0})])
    assert rig.seen(AlarmType.CO) == []


def test_co_from_a_silent_detector_stops_accumulating() -> None:
    rig = Rig()
    rig.reading(0, CO_DET, co_ppm=100.0)  # 25 min to alarm at 100 ppm
    rig.run(3 * 3600, step=10)
    assert rig.seen(AlarmType.CO) == []
    assert rig.kinds(AlarmType.DEVICE_OFFLINE, CO_DET) == [ChangeKind.RAISE]
