"""Unit tests for rules/engine.py with a fake clock.

Every entry point takes `now`; here it is a plain float (T0 + offset). No sleeps, no real
time, no mocks: a small `Rig` feeds the real engine and records what comes out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import defaults
from rules.engine import DeviceRules, RuleEngine
from rules.model import (
    AlarmChange,
    AlarmKey,
    AlarmType,
    Availability,
    ChangeKind,
    Command,
    CommandKind,
    CommandResult,
    DeviceEvent,
    DeviceRef,
    DeviceType,
    EventKind,
    Outcome,
    Reading,
    Reason,
    Severity,
)

T0 = 1_700_000_000.0
SITE = "home-1"
GAS = DeviceRef(SITE, "gas-kitchen")
VALVE = DeviceRef(SITE, "valve-kitchen")
CO_DET = DeviceRef(SITE, "co-room-101")
EFM = DeviceRef(SITE, "efm-panel-1")
BUTTON = DeviceRef(SITE, "button-101")
SMOKE = DeviceRef(SITE, "smoke-corridor")

GAS_KEY = AlarmKey(SITE, GAS.device, AlarmType.GAS_LEAK)
VALVE_FAILURE_KEY = AlarmKey(SITE, VALVE.device, AlarmType.VALVE_FAILURE)

GAS_STALE = defaults.REPORT_INTERVAL_S[DeviceType.GAS_DETECTOR] * defaults.OFFLINE_AFTER_INTERVALS
assert GAS_STALE == 90.0


def dev(ref: DeviceRef, type_: DeviceType, **kw: object) -> DeviceRules:
    """DeviceRules as the config loader would build them from rules.defaults."""
    base: dict[str, object] = {
        "ref": ref,
        "type": type_,
        "thresholds": defaults.THRESHOLDS.get(type_, ()),
        "co": defaults.CO if type_ is DeviceType.CO_DETECTOR else None,
        "report_interval_s": defaults.REPORT_INTERVAL_S[type_],
        "offline_after_intervals": defaults.OFFLINE_AFTER_INTERVALS,
        "primary_quantity": defaults.PRIMARY_QUANTITY.get(type_),
        "valve_confirm_timeout_s": defaults.VALVE_CONFIRM_TIMEOUT_S,
        "valve_retry_interval_s": defaults.VALVE_RETRY_INTERVAL_S,
    }
    if type_ is DeviceType.GAS_DETECTOR:
        base["shutoff_valve"] = VALVE
    base.update(kw)
    return DeviceRules(**base)  # type: ignore[arg-type]


def gas(**kw: object) -> DeviceRules:
    return dev(GAS, DeviceType.GAS_DETECTOR, **kw)


def valve(**kw: object) -> DeviceRules:
    return dev(VALVE, DeviceType.GAS_VALVE, **kw)


def site() -> list[DeviceRules]:
    return [
        gas(),
        valve(),
        dev(CO_DET, DeviceType.CO_DETECTOR),
        dev(EFM, DeviceType.ELECTRICAL_FIRE_MONITOR),
        dev(BUTTON, DeviceType.ALARM_BUTTON),
        dev(SMOKE, DeviceType.SMOKE_DETECTOR),
    ]


@dataclass
class Feed:
    """A device reporting `values` every `every` seconds from `start` until `stop`."""

    ref: DeviceRef
    every: float
    values: dict[str, float]
    start: float = 0.0
    stop: float = float("inf")

    def due(self, t: float) -> bool:
        if t < self.start or t > self.stop:
            return False
        k = (t - self.start) / self.every
        return abs(k - round(k)) < 1e-9


@dataclass
class Rig:
    """The real engine on a fake clock; records every change and command with its offset."""

    devices: Sequence[DeviceRules] = field(default_factory=site)
    t: float = 0.0
    engine: RuleEngine = field(init=False)
    changes: list[tuple[float, AlarmChange]] = field(default_factory=list)
    commands: list[tuple[float, Command]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = RuleEngine(self.devices, T0 + self.t)

    # inputs ------------------------------------------------------------------
    def _go(self, t: float) -> float:
        assert t >= self.t, f"time must not run backwards: {t} < {self.t}"
        self.t = t
        return T0 + t

    def _record(self, out: Outcome) -> Outcome:
        for c in out.commands:
            # DESIGN: the engine only ever asks for close_valve; opening gas is a person's call
            assert c.cmd is CommandKind.CLOSE_VALVE, c
            assert c.cmd is not CommandKind.OPEN_VALVE
            self.commands.append((self.t, c))
        self.changes.extend((self.t, c) for c in out.changes)
        return out

    def reading(self, t: float, ref: DeviceRef, **values: float) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.on_reading(Reading(ref, values, now), now))

    def event(self, t: float, ref: DeviceRef, kind: EventKind) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.on_event(DeviceEvent(ref, kind, now), now))

    def avail(self, t: float, ref: DeviceRef, online: bool) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.on_availability(Availability(ref, online), now))

    def result(
        self, t: float, ok: bool, ref: DeviceRef = VALVE, cmd: CommandKind = CommandKind.CLOSE_VALVE
    ) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.on_command_result(CommandResult(ref, cmd, ok), now))

    def restore(
        self, t: float, key: AlarmKey, level: str | None = None, reason: Reason | None = None
    ) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.restore(key, level, reason, now))

    def tick(self, t: float) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.tick(now))

    def run(self, until: float, feeds: Iterable[Feed] = (), step: float = 1.0) -> None:
        """Tick on the grid of `step` s up to `until`, delivering due feed readings first."""
        feeds = list(feeds)
        k = math.floor(self.t / step + 1e-9) + 1
        while k * step <= until + 1e-9:
            t = k * step
            k += 1
            for f in feeds:
                if f.due(t):
                    self.reading(t, f.ref, **f.values)
            self.tick(t)

    # queries -----------------------------------------------------------------
    def seen(
        self,
        alarm: AlarmType | None = None,
        kind: ChangeKind | None = None,
        ref: DeviceRef | None = None,
        since: float = float("-inf"),
    ) -> list[tuple[float, AlarmChange]]:
        return [
            (t, c)
            for t, c in self.changes
            if (alarm is None or c.key.type is alarm)
            and (kind is None or c.kind is kind)
            and (ref is None or c.key.ref == ref)
            and t >= since
        ]

    def kinds(self, alarm: AlarmType, ref: DeviceRef | None = None) -> list[ChangeKind]:
        return [c.kind for _, c in self.seen(alarm, ref=ref)]

    def closes(self, since: float = float("-inf")) -> list[float]:
        return [t for t, c in self.commands if c.cmd is CommandKind.CLOSE_VALVE and t >= since]


def gas_changes(out: Outcome) -> list[AlarmChange]:
    return [c for c in out.changes if c.key == GAS_KEY]


def of_type(out: Outcome, alarm: AlarmType) -> list[AlarmChange]:
    return [c for c in out.changes if c.key.type is alarm]


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


# =========================================================================== properties


_op = st.one_of(
    st.tuples(st.just("gas"), st.floats(min_value=-5.0, max_value=80.0)),
    st.tuples(st.just("tick"), st.just(0.0)),
    st.tuples(st.just("valve"), st.sampled_from([0.0, 1.0])),
    st.tuples(st.just("ack"), st.sampled_from([0.0, 1.0])),
    st.tuples(st.just("avail"), st.sampled_from([0.0, 1.0])),
    st.tuples(st.just("manual"), st.just(0.0)),
    st.tuples(st.just("event"), st.sampled_from([0.0, 1.0, 2.0])),
)
_ops = st.lists(st.tuples(st.floats(min_value=0.0, max_value=60.0), _op), max_size=120)


def _apply(rig: Rig, t: float, name: str, arg: float) -> Outcome:
    if name == "gas":
        return rig.reading(t, GAS, lel=arg)
    if name == "tick":
        return rig.tick(t)
    if name == "valve":
        return rig.reading(t, VALVE, open=arg)
    if name == "ack":
        return rig.result(t, ok=bool(arg))
    if name == "avail":
        return rig.avail(t, GAS, bool(arg))
    if name == "manual":
        rig._go(t)
        rig.engine.on_manual_open(VALVE)
        return Outcome()
    kind = (EventKind.FAULT, EventKind.FAULT_CLEARED, EventKind.SELF_TEST)[int(arg)]
    return rig.event(t, GAS, kind)


@settings(max_examples=300, deadline=None)
@given(ops=_ops, restored=st.sampled_from([None, "pre_alarm", "level_1"]))
def test_alarms_alternate_and_the_engine_never_opens_a_valve(
    ops: list[tuple[float, tuple[str, float]]], restored: str | None
) -> None:
    rig = Rig()  # Rig itself asserts that no command other than close_valve is ever emitted
    gas_level: str | None = restored
    if restored is not None:
        rig.restore(0, GAS_KEY, restored, None)
    t = 0.0
    for dt, (name, arg) in ops:
        t += dt
        before = gas_level
        out = _apply(rig, t, name, arg)
        for c in gas_changes(out):
            gas_level = None if c.kind is ChangeKind.CLEAR else c.level
        for cmd in out.commands:
            assert cmd.cmd is CommandKind.CLOSE_VALVE
            assert cmd.cause == GAS_KEY
            # a close is only ever asked for while a level-1 (or worse) gas alarm is open
            assert {before, gas_level} & {"level_1", "level_2"}, (before, gas_level, cmd)

    for key in {c.key for _, c in rig.changes}:
        kinds = [c.kind for _, c in rig.changes if c.key == key and not c.latched]
        raises = kinds.count(ChangeKind.RAISE)
        clears = kinds.count(ChangeKind.CLEAR)
        already_open = 1 if restored is not None and key == GAS_KEY else 0
        assert raises <= clears + 1 - already_open, (key, kinds)
        opening = [k for k in kinds if k in (ChangeKind.RAISE, ChangeKind.CLEAR)]
        expected_first = ChangeKind.CLEAR if already_open else ChangeKind.RAISE
        for i, k in enumerate(opening):
            want = expected_first if i % 2 == 0 else _other(expected_first)
            assert k is want, (key, kinds)


def _other(kind: ChangeKind) -> ChangeKind:
    return ChangeKind.CLEAR if kind is ChangeKind.RAISE else ChangeKind.RAISE
