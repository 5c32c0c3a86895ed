"""rules/engine.py: device events, no valid reading, restoring saved state.

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
    VALVE_FAILURE_KEY,
    Feed,
    Rig,
    gas_changes,
)

# =========================================================================== events


@pytest.mark.parametrize(
    ("ref", "kind", "alarm", "severity", "reason", "latched"),
    [
        (
            BUTTON,
            EventKind.PRESSED,
            AlarmType.FIRE_BUTTON,
            Severity.CRITICAL,
            Reason.BUTTON_PRESSED,
            True,
        ),
        (SMOKE, EventKind.SMOKE, AlarmType.SMOKE, Severity.CRITICAL, Reason.SMOKE_DETECTED, True),
        (SMOKE, EventKind.TAMPER, AlarmType.DEVICE_FAULT, Severity.MINOR, Reason.TAMPER, True),
        (
            GAS,
            EventKind.FAULT,
            AlarmType.DEVICE_FAULT,
            Severity.MINOR,
            Reason.FAULT_REPORTED,
            False,
        ),
    ],
)
def test_events_raise_their_alarm(
    ref: DeviceRef,
    kind: EventKind,
    alarm: AlarmType,
    severity: Severity,
    reason: Reason,
    latched: bool,
) -> None:
    rig = Rig()
    out = rig.event(1, ref, kind)
    (change,) = out.changes
    assert change.key == AlarmKey(ref.site, ref.device, alarm)
    assert (change.kind, change.severity, change.reason, change.latched) == (
        ChangeKind.RAISE,
        severity,
        reason,
        latched,
    )
    assert out.commands == []


def test_latched_events_raise_each_time_and_never_clear_by_themselves() -> None:
    rig = Rig()
    rig.event(1, BUTTON, EventKind.PRESSED)
    rig.event(2, BUTTON, EventKind.PRESSED)
    rig.run(2000)
    assert rig.kinds(AlarmType.FIRE_BUTTON) == [ChangeKind.RAISE, ChangeKind.RAISE]


@pytest.mark.parametrize("ref", [GAS, BUTTON, SMOKE, CO_DET, VALVE])
def test_self_test_raises_nothing(ref: DeviceRef) -> None:
    rig = Rig()
    out = rig.event(1, ref, EventKind.SELF_TEST)
    assert not out
    assert rig.engine.status(ref).last_seen == T0 + 1


def test_fault_and_fault_cleared() -> None:
    rig = Rig()
    out = rig.event(1, SMOKE, EventKind.FAULT)
    assert [(c.key.type, c.kind) for c in out.changes] == [
        (AlarmType.DEVICE_FAULT, ChangeKind.RAISE)
    ]
    assert rig.engine.status(SMOKE).fault
    assert not rig.event(2, SMOKE, EventKind.FAULT)  # already raised
    out = rig.event(3, SMOKE, EventKind.FAULT_CLEARED)
    assert [(c.kind, c.reason) for c in out.changes] == [(ChangeKind.CLEAR, Reason.FAULT_CLEARED)]
    assert not rig.engine.status(SMOKE).fault
    assert not rig.event(4, SMOKE, EventKind.FAULT_CLEARED)  # nothing left to clear


# =========================================================================== no valid reading


def _keep_talking(rig: Rig, until: float, start: float = 0.0, every: float = 20.0) -> None:
    """The gas detector says it is online and self-tests, but never sends `lel`."""
    t = start
    while t + every <= until:
        t += every
        rig.run(t - 0.5)
        rig.avail(t - 0.5, GAS, True)
        rig.event(t - 0.5, GAS, EventKind.SELF_TEST)
        rig.tick(t)
    rig.run(until)


def test_no_valid_reading_raises_device_fault_and_a_valid_reading_clears_it() -> None:
    rig = Rig()
    rig.avail(0.5, GAS, True)  # talking from 0.5 s after start-up, never a valid lel
    _keep_talking(rig, GAS_STALE)
    assert rig.seen(AlarmType.DEVICE_FAULT) == []
    _keep_talking(rig, 200, start=GAS_STALE)
    ((t, fault),) = rig.seen(AlarmType.DEVICE_FAULT)
    assert t == GAS_STALE + 1
    assert fault.key == AlarmKey(SITE, GAS.device, AlarmType.DEVICE_FAULT)
    assert (fault.kind, fault.severity, fault.reason) == (
        ChangeKind.RAISE,
        Severity.MINOR,
        Reason.NO_VALID_READING,
    )
    assert rig.seen(AlarmType.DEVICE_OFFLINE, ref=GAS) == []
    assert rig.engine.status(GAS).fault
    assert rig.engine.status(GAS).online
    out = rig.reading(200.5, GAS, lel=0.0)
    assert [(c.key.type, c.kind, c.reason) for c in out.changes] == [
        (AlarmType.DEVICE_FAULT, ChangeKind.CLEAR, Reason.VALID_READING_RETURNED)
    ]
    assert not rig.engine.status(GAS).fault


@pytest.mark.parametrize(
    ("ref", "type_", "other"),
    [
        (CO_DET, DeviceType.CO_DETECTOR, {"temp_c": 21.0}),
        (EFM, DeviceType.ELECTRICAL_FIRE_MONITOR, {"temp_c_1": 30.0, "current_a": 5.0}),
        (GAS, DeviceType.GAS_DETECTOR, {"temp_c": 22.0}),
    ],
)
def test_readings_without_the_primary_quantity_do_not_count(
    ref: DeviceRef, type_: DeviceType, other: dict[str, float]
) -> None:
    stale = defaults.REPORT_INTERVAL_S[type_] * defaults.OFFLINE_AFTER_INTERVALS
    rig = Rig()
    rig.run(stale + 30, feeds=[Feed(ref, 10, other)])  # first heard at 10
    got = [(t, c.reason) for t, c in rig.seen(AlarmType.DEVICE_FAULT, ref=ref)]
    assert got == [(10 + stale + 1, Reason.NO_VALID_READING)]


def test_reported_fault_and_no_valid_reading_both_must_end() -> None:
    rig = Rig()
    rig.event(1, GAS, EventKind.FAULT)
    _keep_talking(rig, 200, start=1)
    assert rig.kinds(AlarmType.DEVICE_FAULT) == [ChangeKind.RAISE]  # one alarm, two reasons
    assert not rig.reading(201, GAS, lel=0.0).changes  # the device still says it is faulty
    out = rig.event(202, GAS, EventKind.FAULT_CLEARED)
    assert [c.kind for c in out.changes] == [ChangeKind.CLEAR]


def test_coming_back_after_silence_is_not_a_missing_reading() -> None:
    """A device back from silence has not been 'talking without a valid value for the
    stale window': its first status message must not raise device_fault."""
    rig = Rig()
    rig.reading(0, GAS, lel=0.0)
    rig.run(500)
    assert rig.kinds(AlarmType.DEVICE_OFFLINE, GAS) == [ChangeKind.RAISE]
    rig.avail(500.5, GAS, True)
    rig.run(510)
    rig.reading(510.5, GAS, lel=0.0)
    rig.run(700, feeds=[Feed(GAS, 30, {"lel": 0.0}, start=540)])
    assert rig.seen(AlarmType.DEVICE_FAULT) == []
    assert rig.kinds(AlarmType.DEVICE_OFFLINE, GAS) == [ChangeKind.RAISE, ChangeKind.CLEAR]


def test_first_contact_late_after_start_up_is_not_a_missing_reading() -> None:
    """Booting detector: first a status message, its first lel a little later."""
    rig = Rig()
    rig.run(80)
    rig.avail(80, GAS, True)
    rig.run(95)
    rig.reading(95.5, GAS, lel=0.0)
    rig.run(300, feeds=[Feed(GAS, 30, {"lel": 0.0}, start=120)])
    assert rig.seen(AlarmType.DEVICE_FAULT) == []
    assert rig.seen(AlarmType.DEVICE_OFFLINE, ref=GAS) == []


def test_back_from_silence_but_no_valid_reading_still_faults_after_the_window() -> None:
    rig = Rig()
    rig.run(500)
    _keep_talking(rig, 800, start=500)
    got = [(t, c.reason) for t, c in rig.seen(AlarmType.DEVICE_FAULT)]
    assert len(got) == 1
    assert got[0][1] is Reason.NO_VALID_READING
    assert 500 + GAS_STALE < got[0][0] <= 500 + GAS_STALE + 20


# =========================================================================== restore


@pytest.mark.parametrize("level", ["level_1", "level_2"])
def test_restored_gas_alarm_recloses_the_valve_and_clears_on_low_readings(level: str) -> None:
    rig = Rig()
    out = rig.restore(0, GAS_KEY, level, Reason.THRESHOLD_EXCEEDED)
    assert out.changes == []
    assert out.commands == [Command(VALVE, CommandKind.CLOSE_VALVE, GAS_KEY, Reason.RESTORED)]
    rig.reading(1, VALVE, open=0)
    # still high: the same alarm, not a new RAISE
    assert ChangeKind.RAISE not in [c.kind for c in gas_changes(rig.reading(2, GAS, lel=25.0))]
    rig.run(200, feeds=[Feed(GAS, 5, {"lel": 1.0}, start=10)])
    got = [(t, c.kind) for t, c in rig.seen(AlarmType.GAS_LEAK)]
    assert got[-1] == (40, ChangeKind.CLEAR)
    assert ChangeKind.RAISE not in [k for _, k in got]
    assert rig.closes() == [0]


def test_restored_gas_alarm_with_a_silent_valve_raises_valve_failure() -> None:
    rig = Rig()
    rig.restore(0, GAS_KEY, "level_1", None)
    rig.run(45)
    assert rig.kinds(AlarmType.VALVE_FAILURE) == [ChangeKind.RAISE]
    assert rig.closes() == [0, 10, 40]


def test_restored_pre_alarm_does_not_close_the_valve() -> None:
    rig = Rig()
    out = rig.restore(0, GAS_KEY, "pre_alarm", Reason.THRESHOLD_EXCEEDED)
    assert out.commands == []
    rig.run(100)
    assert rig.commands == []
    assert rig.seen(AlarmType.VALVE_FAILURE) == []
    out = rig.reading(101, GAS, lel=25.0)
    assert [c.kind for c in gas_changes(out)] == [ChangeKind.ESCALATE]
    assert out.commands == [Command(VALVE, CommandKind.CLOSE_VALVE, GAS_KEY, Reason.GAS_ALARM)]


@pytest.mark.parametrize(
    "message",
    [
        lambda rig, t: rig.reading(t, GAS, lel=0.0),
        lambda rig, t: rig.event(t, GAS, EventKind.SELF_TEST),
        lambda rig, t: rig.avail(t, GAS, True),
    ],
)
@pytest.mark.parametrize("after", [5.0, 200.0])
def test_restored_offline_clears_on_the_next_message(
    message: Callable[[Rig, float], Outcome], after: float
) -> None:
    rig = Rig()
    key = AlarmKey(SITE, GAS.device, AlarmType.DEVICE_OFFLINE)
    assert not rig.restore(0, key, None, Reason.SILENT)
    assert not rig.engine.status(GAS).online
    rig.run(after)
    assert rig.seen(AlarmType.DEVICE_OFFLINE, ref=GAS) == []  # not raised a second time
    out = message(rig, after + 0.5)
    assert [(c.key, c.kind, c.reason) for c in out.changes] == [
        (key, ChangeKind.CLEAR, Reason.BACK_ONLINE)
    ]


def test_restored_co_alarm_clears_after_low_readings() -> None:
    rig = Rig()
    key = AlarmKey(SITE, CO_DET.device, AlarmType.CO)
    assert not rig.restore(0, key, None, Reason.CO_DOSE_REACHED)
    rig.run(300, feeds=[Feed(CO_DET, 10, {"co_ppm": 10.0}, start=5)])
    got = [(t, c.kind) for t, c in rig.seen(AlarmType.CO)]
    assert got == [(65, ChangeKind.CLEAR)]


def test_restored_co_alarm_stays_while_the_concentration_is_high() -> None:
    rig = Rig()
    rig.restore(0, AlarmKey(SITE, CO_DET.device, AlarmType.CO), None, None)
    rig.run(600, feeds=[Feed(CO_DET, 10, {"co_ppm": 45.0}, start=5)])
    assert ChangeKind.CLEAR not in rig.kinds(AlarmType.CO)
    assert ChangeKind.RAISE not in rig.kinds(AlarmType.CO)


@pytest.mark.parametrize(
    ("reason", "clear_with", "cleared"),
    [
        (Reason.FAULT_REPORTED, lambda rig, t: rig.event(t, GAS, EventKind.FAULT_CLEARED), True),
        (Reason.NO_VALID_READING, lambda rig, t: rig.reading(t, GAS, lel=0.0), True),
        # a tamper alarm is latched: a person closes it, the engine never does
        (Reason.TAMPER, lambda rig, t: rig.event(t, GAS, EventKind.FAULT_CLEARED), False),
        (Reason.TAMPER, lambda rig, t: rig.reading(t, GAS, lel=0.0), False),
    ],
)
def test_restored_device_fault(
    reason: Reason, clear_with: Callable[[Rig, float], Outcome], cleared: bool
) -> None:
    rig = Rig()
    key = AlarmKey(SITE, GAS.device, AlarmType.DEVICE_FAULT)
    assert not rig.restore(0, key, None, reason)
    out = clear_with(rig, 1)
    got = [(c.key, c.kind) for c in out.changes]
    assert got == ([(key, ChangeKind.CLEAR)] if cleared else [])


def test_restored_valve_failure_clears_when_the_valve_reports_closed() -> None:
    rig = Rig()
    assert not rig.restore(0, VALVE_FAILURE_KEY, None, Reason.VALVE_NOT_CONFIRMED)
    out = rig.reading(1, VALVE, open=0)
    assert [(c.key, c.kind) for c in out.changes] == [(VALVE_FAILURE_KEY, ChangeKind.CLEAR)]


def test_restore_for_a_removed_device_does_nothing() -> None:
    rig = Rig()
    gone = AlarmKey(SITE, "removed", AlarmType.GAS_LEAK)
    assert not rig.restore(0, gone, "level_1", None)
