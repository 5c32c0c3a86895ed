"""rules/engine.py: gas shut-off, valve confirmation, a valve that reports open.

Every entry point takes `now`; here the Rig's offset from the start. No sleeps, no real
time, no mocks: tests.support.rules_rig's `Rig` feeds the real engine and records what comes
out.
"""

from __future__ import annotations

import pytest

from rules.model import (
    AlarmKey,
    AlarmType,
    ChangeKind,
    Command,
    CommandKind,
    Reason,
    Severity,
)
from tests.support.rules_rig import (
    EFM,
    GAS,
    GAS_KEY,
    VALVE,
    VALVE_FAILURE_KEY,
    Feed,
    Rig,
    gas,
    gas_changes,
    of_type,
    valve,
)

# =========================================================================== gas shut-off


@pytest.mark.parametrize(
    ("lel", "level"),
    [(20.0, "level_1"), (24.5, "level_1"), (49.9, "level_1"), (50.0, "level_2"), (400, "level_2")],
)
def test_gas_alarm_raises_and_closes_the_valve_in_the_same_outcome(lel: float, level: str) -> None:
    rig = Rig()
    assert not rig.reading(0, GAS, lel=3.0)
    out = rig.reading(1, GAS, lel=lel)
    (change,) = gas_changes(out)
    assert change.kind is ChangeKind.RAISE
    assert change.severity is Severity.CRITICAL
    assert change.level == level
    assert change.value == lel
    assert change.reason is Reason.THRESHOLD_EXCEEDED
    assert not change.latched
    assert out.commands == [Command(VALVE, CommandKind.CLOSE_VALVE, GAS_KEY, Reason.GAS_ALARM)]


@pytest.mark.parametrize(("lel", "level"), [(20.0, "level_1"), (35.0, "level_1"), (60, "level_2")])
def test_escalation_from_pre_alarm_closes_the_valve_in_the_same_outcome(
    lel: float, level: str
) -> None:
    rig = Rig()
    out = rig.reading(0, GAS, lel=12.0)
    (change,) = gas_changes(out)
    assert (change.kind, change.level, change.severity) == (
        ChangeKind.RAISE,
        "pre_alarm",
        Severity.WARNING,
    )
    assert out.commands == []
    out = rig.reading(1, GAS, lel=lel)
    (change,) = gas_changes(out)
    assert (change.kind, change.level, change.severity) == (
        ChangeKind.ESCALATE,
        level,
        Severity.CRITICAL,
    )
    assert change.reason is Reason.LEVEL_RAISED
    assert out.commands == [Command(VALVE, CommandKind.CLOSE_VALVE, GAS_KEY, Reason.GAS_ALARM)]


@pytest.mark.parametrize("lel", [10.0, 15.0, 19.99])
def test_pre_alarm_never_closes_the_valve(lel: float) -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=lel)
    rig.reading(1, VALVE, open=1)
    rig.run(
        900,
        feeds=[
            Feed(GAS, 10, {"lel": lel}),
            Feed(GAS, 10, {"lel": lel + 0.005}, start=5),  # small wobble, never reaching 20
            Feed(VALVE, 60, {"open": 1}),
        ],
    )
    assert rig.commands == []
    assert rig.kinds(AlarmType.GAS_LEAK) == [ChangeKind.RAISE, ChangeKind.PEAK]
    assert all(c.level == "pre_alarm" for _, c in rig.seen(AlarmType.GAS_LEAK))
    assert all(c.severity is Severity.WARNING for _, c in rig.seen(AlarmType.GAS_LEAK))
    assert rig.seen(AlarmType.VALVE_FAILURE) == []


def test_flapping_around_level_1_raises_once_and_closes_once() -> None:
    rig = Rig()
    rig.reading(0, VALVE, open=1)
    for t in range(1, 400):
        rig.reading(t, GAS, lel=21.0 if t % 2 else 19.0)
        if t == 3:
            rig.reading(t, VALVE, open=0)  # the valve confirms the close
        rig.tick(t + 0.5)
    assert rig.kinds(AlarmType.GAS_LEAK) == [ChangeKind.RAISE]
    assert rig.closes() == [1]


def test_flapping_across_the_deadband_raises_once_and_never_clears() -> None:
    rig = Rig()
    for t in range(1, 600):
        rig.reading(t, GAS, lel=21.0 if t % 2 else 7.0)
        rig.tick(t + 0.5)
    assert rig.kinds(AlarmType.GAS_LEAK) == [ChangeKind.RAISE]


# --------------------------------------------------------------------- valve confirmation


@pytest.mark.parametrize("how", ["telemetry", "ack"])
@pytest.mark.parametrize("after", [0.0, 0.5, 5.0, 9.5])
def test_confirmation_before_the_deadline_means_no_valve_failure(how: str, after: float) -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    out = rig.reading(after, VALVE, open=0) if how == "telemetry" else rig.result(after, ok=True)
    assert out.changes == []  # nothing to clear: no failure was ever raised
    rig.run(300, feeds=[Feed(GAS, 10, {"lel": 25.0})])
    assert rig.seen(AlarmType.VALVE_FAILURE) == []
    assert rig.closes() == [0]
    assert rig.kinds(AlarmType.GAS_LEAK) == [ChangeKind.RAISE]


@pytest.mark.parametrize(("timeout", "retry"), [(10.0, 30.0), (5.0, 20.0), (2.0, 60.0)])
def test_unconfirmed_close_raises_valve_failure_and_retries(timeout: float, retry: float) -> None:
    rig = Rig([gas(), valve(valve_confirm_timeout_s=timeout, valve_retry_interval_s=retry)])
    rig.reading(0, GAS, lel=30.0)
    rig.run(timeout - 1, feeds=[Feed(GAS, 10, {"lel": 30.0})])
    assert rig.seen(AlarmType.VALVE_FAILURE) == []
    assert rig.closes() == [0]

    rig.run(timeout, feeds=[Feed(GAS, 10, {"lel": 30.0})])
    ((t, failure),) = rig.seen(AlarmType.VALVE_FAILURE)
    assert t == timeout
    assert failure.key == VALVE_FAILURE_KEY
    assert failure.kind is ChangeKind.RAISE
    assert failure.severity is Severity.CRITICAL
    assert failure.reason is Reason.VALVE_NOT_CONFIRMED
    # the close is re-sent in the same tick: the first command may simply have been lost
    assert rig.closes() == [0, timeout]
    retried = [c for tt, c in rig.commands if tt == timeout]
    assert retried == [Command(VALVE, CommandKind.CLOSE_VALVE, GAS_KEY, Reason.VALVE_NOT_CONFIRMED)]

    rig.run(timeout + 3 * retry + 1, feeds=[Feed(GAS, 10, {"lel": 30.0})])
    assert rig.closes() == [0, timeout, timeout + retry, timeout + 2 * retry, timeout + 3 * retry]
    assert rig.kinds(AlarmType.VALVE_FAILURE) == [ChangeKind.RAISE]  # raised once, not per retry

    # late feedback that the valve is closed clears the failure and stops the retries
    t_fb = rig.t + 0.5
    out = rig.reading(t_fb, VALVE, open=0)
    (cleared,) = of_type(out, AlarmType.VALVE_FAILURE)
    assert cleared.kind is ChangeKind.CLEAR
    assert cleared.reason is Reason.VALVE_CONFIRMED
    rig.run(t_fb + 0.5 + 10 * retry, feeds=[Feed(GAS, 10, {"lel": 30.0})])
    assert rig.closes(since=t_fb) == []
    assert rig.kinds(AlarmType.VALVE_FAILURE) == [ChangeKind.RAISE, ChangeKind.CLEAR]


def test_late_ack_clears_valve_failure() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=30.0)
    rig.run(15)
    assert rig.kinds(AlarmType.VALVE_FAILURE) == [ChangeKind.RAISE]
    out = rig.result(15.5, ok=True)
    (cleared,) = of_type(out, AlarmType.VALVE_FAILURE)
    assert (cleared.kind, cleared.reason) == (ChangeKind.CLEAR, Reason.VALVE_CONFIRMED)
    rig.run(300)
    assert rig.closes() == [0, 10]


def test_a_trip_the_device_refuses_raises_a_latched_trip_failure() -> None:
    rig = Rig()
    assert not rig.result(1, ok=True, ref=EFM, cmd=CommandKind.TRIP).changes
    out = rig.result(2, ok=False, ref=EFM, cmd=CommandKind.TRIP)
    (failure,) = out.changes
    assert failure.key == AlarmKey(EFM.site, EFM.device, AlarmType.TRIP_FAILURE)
    assert (failure.kind, failure.severity, failure.reason, failure.latched) == (
        ChangeKind.RAISE,
        Severity.MAJOR,
        Reason.TRIP_NOT_CONFIRMED,
        True,
    )
    assert not out.commands  # power is never restored, nor the trip resent, by a rule
    assert not rig.result(3, ok=False, ref=EFM, cmd=CommandKind.RESET).changes


def test_refused_close_raises_valve_failure_at_once() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=30.0)
    out = rig.result(1, ok=False)
    (failure,) = out.changes
    assert failure.key == VALVE_FAILURE_KEY
    assert (failure.kind, failure.severity, failure.reason) == (
        ChangeKind.RAISE,
        Severity.CRITICAL,
        Reason.VALVE_REFUSED,
    )
    assert not rig.result(2, ok=False).changes  # already failing: not raised twice
    rig.run(60, feeds=[Feed(GAS, 10, {"lel": 30.0})])
    assert rig.kinds(AlarmType.VALVE_FAILURE) == [ChangeKind.RAISE]
    assert rig.closes() == [0, 10, 40]  # still trying while the gas alarm stands
    out = rig.result(60.5, ok=True)
    assert [c.kind for c in of_type(out, AlarmType.VALVE_FAILURE)] == [ChangeKind.CLEAR]


def test_retries_stop_once_the_gas_alarm_has_cleared() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    # back to 2 %LEL from t=15: CLEARING from 15, CLEAR at 45 (off-delay 30 s)
    rig.run(600, feeds=[Feed(GAS, 5, {"lel": 2.0}, start=15)])
    ((t_clear, clear),) = rig.seen(AlarmType.GAS_LEAK, ChangeKind.CLEAR)
    assert t_clear == 45
    assert clear.reason is Reason.RETURNED_TO_NORMAL
    assert rig.closes() == [0, 10, 40]  # 40: the alarm was still open (clearing)
    # the failure stays open for a person: the valve never confirmed
    assert rig.kinds(AlarmType.VALVE_FAILURE) == [ChangeKind.RAISE]

    # a new leak: raised again and the close goes out at once (the old one is long overdue)
    out = rig.reading(700, GAS, lel=30.0)
    assert [c.kind for c in gas_changes(out)] == [ChangeKind.RAISE]
    assert out.commands == [Command(VALVE, CommandKind.CLOSE_VALVE, GAS_KEY, Reason.GAS_ALARM)]


def test_retries_continue_while_the_level_1_alarm_is_open_below_level_1() -> None:
    """The alarm's level never falls while it is open: 15 %LEL after a level-1 alarm keeps
    the alarm open at level_1, and the valve is kept closed."""
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    rig.run(100, feeds=[Feed(GAS, 5, {"lel": 15.0}, start=5)])
    assert rig.kinds(AlarmType.GAS_LEAK) == [ChangeKind.RAISE]
    assert rig.closes() == [0, 10, 40, 70, 100]


def test_pre_alarm_never_retries_a_close() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    # down to a pre-alarm value, cleared, then a new pre-alarm only
    rig.run(100, feeds=[Feed(GAS, 5, {"lel": 1.0}, start=5, stop=60)])
    assert rig.closes() == [0, 10]  # cleared at 35, before the 40 s retry
    rig.run(600, feeds=[Feed(GAS, 5, {"lel": 12.0}, start=105)])
    assert rig.kinds(AlarmType.GAS_LEAK) == [ChangeKind.RAISE, ChangeKind.CLEAR, ChangeKind.RAISE]
    assert rig.seen(AlarmType.GAS_LEAK)[-1][1].level == "pre_alarm"
    assert rig.closes() == [0, 10]


# --------------------------------------------------------------------- valve reports open


def _confirmed_gas_alarm(rig: Rig) -> None:
    rig.reading(0, GAS, lel=25.0)
    rig.reading(2, VALVE, open=0)
    rig.run(20)
    assert rig.closes() == [0]


def test_valve_reporting_open_during_a_gas_alarm_is_closed_again() -> None:
    rig = Rig()
    _confirmed_gas_alarm(rig)
    out = rig.reading(21, VALVE, open=1)
    assert out.commands == [
        Command(VALVE, CommandKind.CLOSE_VALVE, GAS_KEY, Reason.VALVE_REPORTED_OPEN)
    ]
    # that close is now pending: another open report before its deadline adds nothing
    assert rig.reading(25, VALVE, open=1).commands == []
    # not confirmed by its deadline: valve_failure and a retry
    rig.run(31)
    assert rig.kinds(AlarmType.VALVE_FAILURE) == [ChangeKind.RAISE]
    assert rig.closes() == [0, 21, 31]


def test_valve_reporting_open_while_close_pending_sends_nothing_more() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    assert rig.reading(3, VALVE, open=1).commands == []  # still moving
    assert rig.closes() == [0]


def test_valve_reporting_open_while_close_overdue_leaves_it_to_the_retry_schedule() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    rig.run(15)
    assert rig.closes() == [0, 10]
    assert rig.reading(15.5, VALVE, open=1).commands == []
    rig.run(45)
    assert rig.closes() == [0, 10, 40]


def test_escalation_while_a_close_is_pending_does_not_send_it_twice() -> None:
    rig = Rig()
    out = rig.reading(0, GAS, lel=25.0)
    assert len(out.commands) == 1
    out = rig.reading(2, GAS, lel=60.0)
    assert [c.kind for c in gas_changes(out)] == [ChangeKind.ESCALATE]
    assert out.commands == []
    rig.reading(3, VALVE, open=0)
    rig.run(100)
    assert rig.closes() == [0]
    assert rig.seen(AlarmType.VALVE_FAILURE) == []


@pytest.mark.parametrize(
    "gas_values",
    [
        [],  # no gas alarm at all
        [(0, 12.0)],  # pre-alarm only
        [(0, 12.0), (1, 19.0)],
        [(0, 25.0), (1, 2.0), (40, 2.0)],  # gas alarm, since cleared
    ],
)
def test_valve_reporting_open_without_a_gas_alarm_is_left_alone(
    gas_values: list[tuple[float, float]],
) -> None:
    rig = Rig()
    for t, lel in gas_values:
        rig.reading(t, GAS, lel=lel)
    if rig.closes():
        rig.reading(41, VALVE, open=0)  # confirm the old close
    before = rig.closes()
    rig.run(50)
    rig.reading(50.5, VALVE, open=1)
    rig.run(400, feeds=[Feed(VALVE, 60, {"open": 1}, start=50.5)])
    assert rig.closes() == before


def test_manual_open_on_a_detector_is_harmless() -> None:
    rig = Rig()
    rig.engine.on_manual_open(GAS)
    rig.reading(0, GAS, lel=25.0)
    assert rig.closes() == [0]


@pytest.mark.parametrize("manual_at", [1.0, 50.5])
def test_manual_open_stops_reasserting_the_close(manual_at: float) -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    rig.run(manual_at - 0.5, step=0.5)
    closes_before = rig.closes()
    rig.engine.on_manual_open(VALVE)
    rig.run(manual_at + 400, feeds=[Feed(GAS, 10, {"lel": 25.0}, start=manual_at + 9.5)])
    assert rig.closes() == closes_before
    if manual_at < 10:
        assert rig.seen(AlarmType.VALVE_FAILURE) == []


def test_open_valve_ack_clears_an_old_failure() -> None:
    rig = Rig()
    rig.reading(0, GAS, lel=25.0)
    rig.run(20)
    rig.run(100, feeds=[Feed(GAS, 5, {"lel": 1.0}, start=21)])  # alarm clears at 51
    assert rig.closes() == [0, 10, 40]
    rig.engine.on_manual_open(VALVE)
    out = rig.result(101, ok=True, cmd=CommandKind.OPEN_VALVE)
    assert [(c.kind, c.reason) for c in out.changes] == [(ChangeKind.CLEAR, Reason.VALVE_RESPONDED)]
    rig.run(400)
    assert rig.closes() == [0, 10, 40]
