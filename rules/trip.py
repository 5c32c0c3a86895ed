"""Automatic trip of an electrical-fire monitor's circuit, and confirmation of every trip.

Cutting power in a care home stops oxygen concentrators, lifts and call systems, so the
automatic trip is off unless a device names `auto_trip`, and then it is cautious:
- it trips only on a named alarm type of the device whose value is above its level now
  (phase ACTIVE, value fresh): a value that went stale or fell back never trips;
- after `delay_s` of that alarm being active without a break (the monotonic clock);
- when `agree` is set, only while that second condition is an open alarm at the moment of
  the trip (another alarm type of the same device, or of another named device): the first
  alarm waits for it, for as long as it stays active;
- once per episode: after a trip, nothing is sent again until every trip alarm of the
  device has gone back to normal, so a person who closes the breaker again while the alarm
  is still open (to restart an oxygen concentrator) is not fought. The engine never asks
  for power back: there is no command for that, and re-closing is a person's act on site.

Every trip, automatic or a person's, must be confirmed within `confirm_timeout_s` by the
command's result (Modbus read-back, MQTT ack) or by a reading of the device with `open` at
1 (its breaker open); otherwise `trip_failure` is raised, latched for a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rules import thresholds as th
from rules.model import (
    DEFAULT_SEVERITY,
    AlarmChange,
    AlarmKey,
    AlarmType,
    ChangeKind,
    Command,
    CommandKind,
    CommandResult,
    DeviceRef,
    Outcome,
    Reason,
)
from rules.state import DeviceState

# The electrical alarms an automatic trip may act on: measured conditions the engine holds.
TRIPPING_ALARMS = frozenset(
    {AlarmType.RESIDUAL_CURRENT, AlarmType.OVERTEMPERATURE, AlarmType.OVERCURRENT}
)


@dataclass(frozen=True, slots=True)
class Agreement:
    """The second condition: `alarm` open on `device` (this device when None); with no
    `alarm`, any measured alarm of that other device."""

    alarm: AlarmType | None = None
    device: DeviceRef | None = None

    def describe(self) -> str:
        what = self.alarm.value if self.alarm is not None else "any alarm"
        return what if self.device is None else f"{what} on {self.device.device}"


@dataclass(frozen=True, slots=True)
class AutoTrip:
    on: frozenset[AlarmType]
    delay_s: float = 0.0
    agree: Agreement | None = None

    def __post_init__(self) -> None:
        if not self.on or not self.on <= TRIPPING_ALARMS:
            raise ValueError(f"auto_trip acts on {sorted(TRIPPING_ALARMS)}, not {sorted(self.on)}")
        if self.delay_s < 0:
            raise ValueError("auto_trip delay must not be negative")


def decide(d: DeviceState, devices: Mapping[DeviceRef, DeviceState], now: float) -> Outcome:
    """Whether `d` should trip its circuit now; the command (and its deadline) if so."""
    out = Outcome()
    rule = d.rules.auto_trip
    t = d.trip
    if rule is None or t is None:
        return out
    active = _active_trip_alarm(d, rule, now)
    if active is None:
        if not _any_open(d, rule.on):
            t.tripped = False  # the episode is over: a new one may trip again
        t.active_since = None
        return out
    if t.tripped:
        return out  # once per episode; never fight a person who restored power
    if t.active_since is None:
        t.active_since = now
    if now - t.active_since < rule.delay_s:
        return out
    if rule.agree is not None and not _agrees(d, rule.agree, devices):
        return out  # wait for the second condition while the first stays active
    held = now - t.active_since
    why = f"{active.value} active {held:g} s" + (
        f"; agreed: {rule.agree.describe()}" if rule.agree is not None else ""
    )
    t.tripped = True
    sent(d, now)
    key = AlarmKey(d.rules.ref.site, d.rules.ref.device, active)
    out.commands.append(Command(d.rules.ref, CommandKind.TRIP, key, Reason.AUTO_TRIP, why))
    return out


def sent(d: DeviceState, now: float) -> None:
    """A trip left for `d` (automatic or a person's): its confirmation deadline starts."""
    if d.trip is not None:
        d.trip.confirm_deadline = now + d.rules.trip_confirm_timeout_s
        d.trip.overdue = False


def on_command_result(d: DeviceState, result: CommandResult) -> Outcome:
    """A trip's answer: ok confirms it; a refusal raises `trip_failure` at once."""
    t = d.trip
    if result.cmd is not CommandKind.TRIP:
        return Outcome()
    if result.ok:
        if t is not None:
            t.confirm_deadline = None
        return Outcome()
    if t is not None:
        if t.confirm_deadline is None and t.overdue:
            return Outcome()  # the deadline already raised it for this trip
        t.confirm_deadline = None
    return Outcome([_failure(result.ref)])


def on_breaker(d: DeviceState, *, is_open: bool) -> None:
    """The device reported its breaker; open confirms a trip under way."""
    if is_open and d.trip is not None:
        d.trip.confirm_deadline = None


def deadline(d: DeviceState, now: float) -> Outcome:
    t = d.trip
    if t is None or t.confirm_deadline is None or now < t.confirm_deadline:
        return Outcome()
    t.confirm_deadline = None
    t.overdue = True
    return Outcome([_failure(d.rules.ref)])


def restored(d: DeviceState, alarm: AlarmType) -> None:
    """An open trip alarm reloaded at start-up: its trip (if any) was decided before the
    restart; a person may have restored power since, so it is not sent again."""
    rule = d.rules.auto_trip
    if rule is not None and d.trip is not None and alarm in rule.on:
        d.trip.tripped = True


def _active_trip_alarm(d: DeviceState, rule: AutoTrip, now: float) -> AlarmType | None:
    for r in d.rules.thresholds:
        if r.alarm not in rule.on:
            continue
        cond = d.conditions.get(r.alarm)
        if cond is None or cond.phase is not th.Phase.ACTIVE:
            continue
        if d.current(r.quantity, now) is not None:
            return r.alarm
    return None


def _any_open(d: DeviceState, alarms: frozenset[AlarmType]) -> bool:
    return any(c.abnormal for a, c in d.conditions.items() if a in alarms)


def _agrees(d: DeviceState, agree: Agreement, devices: Mapping[DeviceRef, DeviceState]) -> bool:
    other = d if agree.device is None else devices.get(agree.device)
    if other is None:
        return False  # a device removed from the configuration agrees to nothing
    if agree.alarm is None:
        return any(c.abnormal for c in other.conditions.values()) or _co_open(other)
    if agree.alarm is AlarmType.CO:
        return _co_open(other)
    cond = other.conditions.get(agree.alarm)
    return cond is not None and cond.abnormal


def _co_open(d: DeviceState) -> bool:
    return d.co is not None and d.co.active


def _failure(ref: DeviceRef) -> AlarmChange:
    # Power was not cut although a rule or a person asked for it: a person must know.
    # Latched: whether the circuit is now safe is for a person on site to say.
    return AlarmChange(
        key=AlarmKey(ref.site, ref.device, AlarmType.TRIP_FAILURE),
        kind=ChangeKind.RAISE,
        severity=DEFAULT_SEVERITY[AlarmType.TRIP_FAILURE],
        reason=Reason.TRIP_NOT_CONFIRMED,
        latched=True,
    )
