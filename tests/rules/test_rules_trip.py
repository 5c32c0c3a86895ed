"""rules/trip.py through the engine: automatic trip of an electrical-fire monitor, its delay
and second condition, once per episode, and the confirmation deadline of every trip.

Time is an offset `t` from the start on a fake clock passed in; no sleeps, no mocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from rules import defaults
from rules.engine import DeviceRules, RuleEngine
from rules.model import (
    AlarmChange,
    AlarmKey,
    AlarmType,
    ChangeKind,
    Command,
    CommandKind,
    CommandResult,
    DeviceRef,
    DeviceType,
    Instant,
    Outcome,
    Reading,
    Reason,
)
from rules.trip import Agreement, AutoTrip

SITE = "home-1"
EFM = DeviceRef(SITE, "efm-1")
EFM2 = DeviceRef(SITE, "efm-2")
RESIDUAL = AlarmType.RESIDUAL_CURRENT
OVERTEMP = AlarmType.OVERTEMPERATURE
FAILURE = AlarmKey(SITE, EFM.device, AlarmType.TRIP_FAILURE)
MONO0, WALL0 = 5_000.0, 1_700_000_000.0
ON_DELAY = defaults.RESIDUAL_CURRENT.on_delay_s  # 10 s before residual current is an alarm


def efm(ref: DeviceRef, auto_trip: AutoTrip | None = None, confirm_s: float = 10.0) -> DeviceRules:
    t = DeviceType.ELECTRICAL_FIRE_MONITOR
    return DeviceRules(
        ref=ref,
        type=t,
        thresholds=defaults.THRESHOLDS[t],
        report_interval_s=defaults.REPORT_INTERVAL_S[t],
        primary_quantity=defaults.PRIMARY_QUANTITY[t],
        auto_trip=auto_trip,
        trip_confirm_timeout_s=confirm_s,
    )


@dataclass
class Clocked:
    """The real engine on a fake clock; everything that comes out, with its offset."""

    devices: list[DeviceRules]
    t: float = 0.0
    commands: list[tuple[float, Command]] = field(default_factory=list)
    changes: list[tuple[float, AlarmChange]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = RuleEngine(self.devices, self.now)

    @property
    def now(self) -> Instant:
        return Instant(MONO0 + self.t, WALL0 + self.t)

    def _go(self, t: float) -> Instant:
        assert t >= self.t
        self.t = t
        return self.now

    def _keep(self, out: Outcome) -> Outcome:
        for c in out.commands:
            # Power is only ever cut by the engine, never given back.
            assert c.cmd is CommandKind.TRIP, c
        self.commands += [(self.t, c) for c in out.commands]
        self.changes += [(self.t, c) for c in out.changes]
        return out

    def reading(self, t: float, ref: DeviceRef = EFM, **values: float) -> Outcome:
        now = self._go(t)
        return self._keep(self.engine.on_reading(Reading(ref, values, now.wall), now))

    def tick(self, t: float) -> Outcome:
        return self._keep(self.engine.tick(self._go(t)))

    def ticks(
        self, until: float, ref: DeviceRef = EFM, every: float = 1.0, **values: float
    ) -> None:
        """Tick every second up to `until`; with values, the device reports them every 5 s."""
        t = self.t
        while t < until:
            t = min(until, t + every)
            if values and round(t) % 5 == 0:
                self.reading(t, ref, **values)
            self.tick(t)

    def result(self, t: float, ok: bool, ref: DeviceRef = EFM) -> Outcome:
        now = self._go(t)
        return self._keep(
            self.engine.on_command_result(CommandResult(ref, CommandKind.TRIP, ok), now)
        )

    def trips(self) -> list[tuple[float, Command]]:
        return [(t, c) for t, c in self.commands if c.cmd is CommandKind.TRIP]

    def failures(self) -> list[float]:
        return [t for t, c in self.changes if c.key == FAILURE]


def test_off_by_default_an_electrical_alarm_never_trips() -> None:
    rig = Clocked([efm(EFM)])
    rig.reading(0, residual_ma=900, temp_c_1=120)
    rig.ticks(300, residual_ma=900, temp_c_1=120)
    raised = {c.key.type for _, c in rig.changes if c.kind is ChangeKind.RAISE}
    assert raised == {RESIDUAL, OVERTEMP}
    assert rig.commands == []


def test_trips_in_the_same_outcome_as_the_alarm_without_delay() -> None:
    rig = Clocked([efm(EFM, AutoTrip(frozenset({RESIDUAL})))])
    assert not rig.reading(0, residual_ma=450).commands  # pending: the on-delay runs
    out = rig.reading(ON_DELAY, residual_ma=450)
    assert [c.kind for c in out.changes] == [ChangeKind.RAISE]
    (cmd,) = out.commands
    assert cmd.ref == EFM and cmd.cmd is CommandKind.TRIP and cmd.reason is Reason.AUTO_TRIP
    assert cmd.cause == AlarmKey(SITE, EFM.device, RESIDUAL)  # on that alarm's timeline
    assert cmd.detail is not None and "residual_current active" in cmd.detail


def test_delay_runs_on_the_fake_clock_and_restarts_when_the_value_falls_back() -> None:
    rig = Clocked([efm(EFM, AutoTrip(frozenset({RESIDUAL}), delay_s=30))])
    rig.reading(0, residual_ma=450)
    rig.ticks(ON_DELAY + 29, residual_ma=450)  # raised at 10; 29 s of the 30 s delay
    assert rig.trips() == []
    rig.reading(ON_DELAY + 29.5, residual_ma=100)  # below clear_below: the alarm is clearing
    rig.ticks(ON_DELAY + 35, residual_ma=100)
    rig.reading(ON_DELAY + 36, residual_ma=450)  # above again: the delay starts over
    rig.ticks(ON_DELAY + 65, residual_ma=450)
    assert rig.trips() == []
    rig.ticks(ON_DELAY + 67, residual_ma=450)
    ((t, cmd),) = rig.trips()
    assert t == ON_DELAY + 66
    assert cmd.detail == "residual_current active 30 s"


def test_a_stale_value_never_trips() -> None:
    """The monitor goes silent while its alarm is active: nothing says it still is."""
    stale = defaults.REPORT_INTERVAL_S[DeviceType.ELECTRICAL_FIRE_MONITOR] * 3
    rig = Clocked([efm(EFM, AutoTrip(frozenset({RESIDUAL}), delay_s=stale + 30))])
    rig.reading(0, residual_ma=450)
    rig.reading(ON_DELAY, residual_ma=450)
    rig.ticks(ON_DELAY + stale + 60)
    assert rig.trips() == []


def test_second_condition_on_the_same_device_must_agree_at_the_moment_of_the_trip() -> None:
    rule = AutoTrip(frozenset({OVERTEMP}), delay_s=5, agree=Agreement(RESIDUAL))
    rig = Clocked([efm(EFM, rule)])
    rig.reading(0, temp_c_1=95, residual_ma=20)
    rig.ticks(60, temp_c_1=95, residual_ma=20)  # overtemperature alone: an alarm, no trip
    assert any(c.key.type is OVERTEMP for _, c in rig.changes)
    assert rig.trips() == []
    rig.reading(61, temp_c_1=95, residual_ma=450)
    rig.ticks(61 + ON_DELAY, temp_c_1=95, residual_ma=450)
    ((t, cmd),) = rig.trips()
    assert t == 61 + ON_DELAY  # the tick where residual current became an alarm
    assert cmd.cause.type is OVERTEMP
    assert cmd.detail is not None and cmd.detail.endswith("agreed: residual_current")


def test_second_condition_on_another_device() -> None:
    rule = AutoTrip(frozenset({RESIDUAL}), agree=Agreement(OVERTEMP, EFM2))
    rig = Clocked([efm(EFM, rule), efm(EFM2)])
    rig.reading(0, EFM, residual_ma=450)
    rig.reading(0, EFM2, temp_c_1=25)
    rig.ticks(40, EFM, residual_ma=450)
    assert rig.trips() == []  # its own alarm is not enough
    rig.reading(41, EFM2, temp_c_1=90)
    rig.reading(41 + 10, EFM2, temp_c_1=90)  # overtemperature's 10 s on-delay: raised
    assert rig.trips() == []  # the other device's reading trips nothing by itself...
    rig.tick(52)  # ...the next tick sees both
    ((t, cmd),) = rig.trips()
    assert t == 52 and cmd.ref == EFM
    assert cmd.detail is not None and "agreed: overtemperature on efm-2" in cmd.detail


def test_once_per_episode_a_person_restoring_power_is_not_fought() -> None:
    rig = Clocked([efm(EFM, AutoTrip(frozenset({RESIDUAL})))])
    rig.reading(0, residual_ma=450)
    rig.reading(ON_DELAY, residual_ma=450, open=0)
    assert len(rig.trips()) == 1
    rig.reading(ON_DELAY + 1, residual_ma=450, open=1)  # the breaker opened
    # A person closes the breaker again (an oxygen concentrator) while the alarm is open.
    rig.reading(30, residual_ma=450, open=0)
    rig.ticks(600, residual_ma=450, open=0)
    assert len(rig.trips()) == 1
    assert rig.failures() == []  # confirmed by the reading `open: 1`
    # The alarm clears; a new episode trips again.
    rig.ticks(700, residual_ma=10)
    assert any(c.kind is ChangeKind.CLEAR for _, c in rig.changes)
    rig.reading(701, residual_ma=450)
    rig.ticks(701 + ON_DELAY, residual_ma=450)
    assert len(rig.trips()) == 2


def _tripped(confirm_s: float = 10.0) -> Clocked:
    rig = Clocked([efm(EFM, AutoTrip(frozenset({RESIDUAL})), confirm_s=confirm_s)])
    rig.reading(0, residual_ma=450)
    rig.reading(ON_DELAY, residual_ma=450)
    assert len(rig.trips()) == 1
    return rig


def test_unconfirmed_trip_raises_one_latched_trip_failure_at_the_deadline() -> None:
    rig = _tripped(confirm_s=8)
    rig.ticks(ON_DELAY + 7.5, every=0.5)
    assert rig.failures() == []
    rig.tick(ON_DELAY + 8)
    ((_, change),) = [(t, c) for t, c in rig.changes if c.key == FAILURE]
    assert change.kind is ChangeKind.RAISE and change.latched
    assert change.reason is Reason.TRIP_NOT_CONFIRMED
    rig.result(ON_DELAY + 9, ok=False)  # a late refusal of the same trip: not a second one
    rig.ticks(ON_DELAY + 60)
    assert rig.failures() == [ON_DELAY + 8]
    assert len(rig.trips()) == 1  # never sent again (and never re-closed)


@pytest.mark.parametrize("how", ["ack", "reading"])
def test_confirmed_trip_raises_nothing(how: str) -> None:
    rig = _tripped()
    if how == "ack":
        rig.result(ON_DELAY + 2, ok=True)
    else:
        rig.reading(ON_DELAY + 2, residual_ma=0, open=1)
    rig.ticks(ON_DELAY + 60)
    assert rig.failures() == []


def test_a_reading_with_the_breaker_still_closed_does_not_confirm() -> None:
    rig = _tripped()
    rig.reading(ON_DELAY + 2, residual_ma=450, open=0)
    rig.ticks(ON_DELAY + 11)
    assert rig.failures() == [ON_DELAY + 10]


def test_refused_trip_raises_trip_failure_at_once_and_not_again_at_the_deadline() -> None:
    rig = _tripped()
    out = rig.result(ON_DELAY + 1, ok=False)
    assert [c.key for c in out.changes] == [FAILURE]
    rig.ticks(ON_DELAY + 30)
    assert rig.failures() == [ON_DELAY + 1]


def test_a_persons_trip_has_the_same_deadline() -> None:
    rig = Clocked([efm(EFM)])  # no auto_trip: the manual command still must be confirmed
    rig.reading(0, residual_ma=10)
    rig.engine.on_trip_sent(EFM, rig._go(5))
    rig.ticks(14.5, every=0.5, residual_ma=10)
    assert rig.failures() == []
    rig.tick(15)
    assert rig.failures() == [15]


def test_restored_alarm_does_not_trip_again_after_a_restart() -> None:
    """The trip was decided before the restart; a person may have restored power since."""
    rig = Clocked([efm(EFM, AutoTrip(frozenset({RESIDUAL})))])
    key = AlarmKey(SITE, EFM.device, RESIDUAL)
    rig.engine.restore(key, "alarm", None, rig.now)
    rig.ticks(120, residual_ma=450)
    assert rig.trips() == []


def test_auto_trip_acts_only_on_electrical_alarms() -> None:
    with pytest.raises(ValueError, match="auto_trip acts on"):
        AutoTrip(frozenset({AlarmType.GAS_LEAK}))
    with pytest.raises(ValueError):
        AutoTrip(frozenset())
