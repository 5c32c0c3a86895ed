"""The rule engine: normalised inputs in, alarm changes and commands out.

No I/O, no asyncio, no clock: every entry point takes an `Instant`, both clocks as the shell
read them once for this input. Every deadline, delay and freshness window runs on its
`mono`, so a step of the wall clock neither marks devices offline nor delays
`valve_failure`; its `wall` only stamps what `status` shows (last seen, values' times). In
the modules below the engine, `now` is that monotonic time. State is per device and lives
in this object; the shell feeds inputs in arrival order and calls `tick` about once a
second so that delays, silence and valve confirmation deadlines run out.

Invariants worth knowing before changing anything here:
- a value is only acted on while fresh (age <= the device's stale window); a stale or
  missing value never raises, never clears, and is never taken as 0;
- silence raises `device_offline` and leaves every other alarm as it is;
- the engine only ever asks for `close_valve`, and for `trip` where a device's `auto_trip`
  says so (`rules.trip`); opening gas and restoring power are a person's decision.

The engine dispatches inputs and keeps the measured conditions (thresholds, CO); whether a
device is there and working is `rules.availability`, the valves' supervision is
`rules.valve`, and the per-device state they share is `rules.state`. `DeviceRules` and
`DeviceStatus` are part of the engine's interface and importable from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from rules import availability
from rules import co as co_rule
from rules import thresholds as th
from rules import trip as trips
from rules import valve as valves
from rules.model import (
    DEFAULT_SEVERITY,
    AlarmChange,
    AlarmKey,
    AlarmType,
    Availability,
    ChangeKind,
    CommandKind,
    CommandResult,
    DeviceEvent,
    DeviceRef,
    DeviceType,
    EventKind,
    FaultReport,
    Instant,
    Outcome,
    Reading,
    Reason,
    Severity,
)
from rules.state import DeviceRules, DeviceState, DeviceStatus, TripState, ValveState

__all__ = ["DeviceRules", "DeviceStatus", "RuleEngine"]


class RuleEngine:
    def __init__(self, devices: Iterable[DeviceRules], now: Instant) -> None:
        self._devices: dict[DeviceRef, DeviceState] = {}
        t = now.mono
        for rules in devices:
            # Silence is measured from start-up: a device we have never heard from goes
            # offline after its stale window, not at once.
            dev = DeviceState(rules=rules, last_seen=t, primary_at=t)
            if rules.type is DeviceType.GAS_VALVE:
                dev.valve = ValveState()
            if rules.type is DeviceType.ELECTRICAL_FIRE_MONITOR:
                dev.trip = TripState()
            if rules.co is not None:
                dev.co = co_rule.CoState(measured_at=t, integrated_to=t)
            self._devices[rules.ref] = dev
        self._valves = valves.ValveSupervisor(self._devices)

    # ---------------------------------------------------------------- queries
    def knows(self, ref: DeviceRef) -> bool:
        return ref in self._devices

    def status(self, ref: DeviceRef) -> DeviceStatus:
        d = self._devices[ref]
        return DeviceStatus(
            online=not d.offline_active,
            fault=d.fault_active,
            last_seen=d.heard_at,
            values={name: (value, wall) for name, (value, _, wall) in d.values.items()},
        )

    def rules_of(self, ref: DeviceRef) -> DeviceRules | None:
        """The rules the engine applies to `ref` now (its thresholds, after a reload too)."""
        d = self._devices.get(ref)
        return None if d is None else d.rules

    def flags(self, ref: DeviceRef) -> tuple[bool, bool]:
        """(online, fault) of one device: `status` without copying its values."""
        d = self._devices[ref]
        return not d.offline_active, d.fault_active

    def counts(self) -> tuple[int, int, int, int]:
        """(devices, online and heard from, offline, in fault), without a status each."""
        online = offline = fault = 0
        for d in self._devices.values():
            if d.offline_active:
                offline += 1
            elif d.heard_at is not None:
                online += 1
            if d.fault_active:
                fault += 1
        return len(self._devices), online, offline, fault

    def refs(self) -> Iterator[DeviceRef]:
        return iter(self._devices)

    # ---------------------------------------------------------------- inputs
    def on_reading(self, reading: Reading, at: Instant) -> Outcome:
        d = self._devices[reading.ref]
        out = availability.seen(d, at)
        now = at.mono
        rules = d.rules
        # Quantities whose last value had gone stale before this reading (see below).
        # (Only a condition under way can be affected: with none, nothing to compute.)
        was_stale = (
            {
                rule.alarm
                for rule in rules.thresholds
                if _has(reading, rule.quantity) and d.current(rule.quantity, now) is None
            }
            if d.conditions
            else ()
        )
        for name, value in reading.values.items():
            d.values[name] = (value, now, at.wall)
        if rules.primary_quantity is not None and _has(reading, rules.primary_quantity):
            out.extend(availability.primary_reading(d, now))
        values = reading.values
        for rule in rules.thresholds:
            q = rule.quantity
            if q != "temp_c":
                if q not in values:
                    continue
                current = values[q]  # just stored at `now`: fresh
            else:
                hottest = d.current(q, now) if _has(reading, q) else None
                if hottest is None:
                    continue
                current = hottest
            cond = d.conditions.get(rule.alarm, th.NORMAL)
            if cond.phase is th.Phase.CLEARING and rule.alarm in was_stale:
                # The low value that started the off-delay went stale: nothing says the
                # value stayed low meanwhile, so the off-delay starts again from this one.
                cond = replace(cond, since=now)
            applied = self._apply_step(d, rule, th.step(rule, cond, current, now), current, now)
            if applied is not None:
                out.extend(applied)
        if rules.co is not None and d.co is not None and "co_ppm" in reading.values:
            ppm = reading.values["co_ppm"]
            step = co_rule.measure(rules.co, d.co, ppm, now, rules.stale_after_s)
            out.extend(_apply_co(d, step, ppm))
        if d.valve is not None and "open" in reading.values:
            is_open = reading.values["open"] >= 0.5
            out.extend(self._valves.on_feedback(d, is_open=is_open, now=now))
        if d.trip is not None:
            if "open" in reading.values:
                trips.on_breaker(d, is_open=reading.values["open"] >= 0.5)
            if rules.auto_trip is not None:
                out.extend(trips.decide(d, self._devices, now))
        return out

    def on_event(self, event: DeviceEvent, now: Instant) -> Outcome:
        d = self._devices[event.ref]
        out = availability.seen(d, now)
        kind = event.event
        if kind is EventKind.PRESSED:
            out.changes.append(_latched(event.ref, AlarmType.FIRE_BUTTON, Reason.BUTTON_PRESSED))
        elif kind is EventKind.SMOKE:
            out.changes.append(_latched(event.ref, AlarmType.SMOKE, Reason.SMOKE_DETECTED))
        elif kind is EventKind.TAMPER:
            out.changes.append(_latched(event.ref, AlarmType.DEVICE_FAULT, Reason.TAMPER))
        elif kind is EventKind.FAULT:
            out.extend(availability.reported_fault(d, True, Reason.FAULT_REPORTED))
        elif kind is EventKind.FAULT_CLEARED:
            out.extend(availability.reported_fault(d, False, Reason.FAULT_CLEARED))
        # SELF_TEST proves the device alive (`availability.seen`) and raises nothing.
        return out

    def on_availability(self, av: Availability, now: Instant) -> Outcome:
        d = self._devices[av.ref]
        if av.online:
            return availability.seen(d, now)
        return availability.said_offline(d, av.reason or Reason.STATUS_OFFLINE)

    def on_fault(self, report: FaultReport, now: Instant) -> Outcome:
        """A driver saw a fault (status bit, exception response); the device did answer."""
        d = self._devices[report.ref]
        out = availability.seen(d, now)
        fault = availability.driver_fault(d, report.source, report.active, report.reason)
        return out.extend_with(fault)

    def on_command_result(self, result: CommandResult, now: Instant) -> Outcome:
        d = self._devices[result.ref]
        out = availability.seen(d, now)
        if result.cmd is CommandKind.TRIP:
            return out.extend_with(trips.on_command_result(d, result))
        return out.extend_with(self._valves.on_command_result(d, result))

    def on_trip_sent(self, ref: DeviceRef, at: Instant) -> None:
        """A person sent `trip`: it must be confirmed within the device's deadline too."""
        trips.sent(self._devices[ref], at.mono)

    def on_manual_open(self, ref: DeviceRef) -> None:
        """A person sent `open_valve`: stop re-asserting an earlier close on this valve."""
        valves.manual_open(self._devices[ref])

    def restore(
        self,
        key: AlarmKey,
        level: str | None,
        reason: Reason | None,
        at: Instant,
    ) -> Outcome:
        """Seed state from an alarm that was open when the gateway stopped.

        Without this, a reloaded alarm could never clear (the engine would think the
        condition normal and stay silent) and a closed valve would not be re-asserted.
        """
        out = Outcome()
        now = at.mono
        d = self._devices.get(key.ref)
        if d is None:
            return out  # device removed from the configuration; the alarm stays for a person
        for rule in d.rules.thresholds:
            if rule.alarm is key.type:
                cond = th.restored(rule, level, now)
                d.conditions[rule.alarm] = cond
                shutoff = rule.level_index(rule.shutoff_level) if rule.shutoff_level else None
                # Only an alarm at or above the shut-off level closes the valve again: a
                # restored pre-alarm never does, exactly as when it was first raised.
                if (
                    shutoff is not None
                    and cond.level >= shutoff
                    and d.rules.shutoff_valve is not None
                ):
                    out.extend(self._valves.close(d.rules.shutoff_valve, key, Reason.RESTORED, now))
        if key.type is AlarmType.CO and d.co is not None:
            d.co = co_rule.restored(now)
        elif key.type in (AlarmType.DEVICE_OFFLINE, AlarmType.DEVICE_FAULT):
            availability.restore(d, key.type, reason)
        elif key.type is AlarmType.VALVE_FAILURE and d.valve is not None:
            d.valve.failure_active = True
        trips.restored(d, key.type)
        return out

    def reconfigure(self, devices: Iterable[DeviceRules], now: Instant) -> None:
        """Take a reloaded configuration's devices; raises nothing and changes no alarm.

        A device of the same ref and type keeps its state (values, availability, conditions
        under way) under its new rules; a condition whose rule is gone is dropped (its open
        alarm stays for a person). A new device, or one whose type changed, starts as at
        start-up; a device left out is forgotten (its open alarms stay for a person).
        """
        t = now.mono
        wanted = {rules.ref: rules for rules in devices}
        for ref in [ref for ref in self._devices if ref not in wanted]:
            del self._devices[ref]
        for ref, rules in wanted.items():
            d = self._devices.get(ref)
            if d is None or d.rules.type is not rules.type:
                d = DeviceState(rules=rules, last_seen=t, primary_at=t)
                if rules.type is DeviceType.GAS_VALVE:
                    d.valve = ValveState()
                if rules.type is DeviceType.ELECTRICAL_FIRE_MONITOR:
                    d.trip = TripState()
                self._devices[ref] = d
            d.rules = rules
            kept = {rule.alarm for rule in rules.thresholds}
            for alarm in [a for a in d.conditions if a not in kept]:
                del d.conditions[alarm]
            if rules.co is None:
                d.co = None
            elif d.co is None:
                d.co = co_rule.CoState(measured_at=t, integrated_to=t)
        # Which detectors close which valve is derived from the rules: built again.
        self._valves = valves.ValveSupervisor(self._devices)

    def tick(self, at: Instant) -> Outcome:
        out = Outcome()
        now = at.mono
        for d in self._devices.values():
            out.extend(availability.overdue(d, now))
            rules = d.rules
            for rule in rules.thresholds:
                cond = d.conditions.get(rule.alarm)
                if cond is None or cond.phase not in (th.Phase.PENDING, th.Phase.CLEARING):
                    continue
                fresh = d.current(rule.quantity, now) is not None
                applied = self._apply_step(d, rule, th.tick(rule, cond, now, fresh), None, now)
                if applied is not None:
                    out.extend(applied)
            if rules.co is not None and d.co is not None and d.co.ppm is not None:
                fresh = d.fresh("co_ppm", now)
                step = co_rule.advance(rules.co, d.co, now, fresh, rules.stale_after_s)
                out.extend(_apply_co(d, step, d.co.ppm))
            if d.valve is not None:
                out.extend(self._valves.deadlines(d, now))
            if d.trip is not None:
                if rules.auto_trip is not None:
                    out.extend(trips.decide(d, self._devices, now))
                out.extend(trips.deadline(d, now))
        return out

    # ---------------------------------------------------------------- internals
    def _apply_step(
        self,
        d: DeviceState,
        rule: th.ThresholdRule,
        step: th.Step,
        value: float | None,
        now: float,
    ) -> Outcome | None:
        """The condition's new state; the alarm change and commands it implies, if any."""
        if step.condition.phase is th.Phase.NORMAL:
            if d.conditions:
                d.conditions.pop(rule.alarm, None)
        else:
            d.conditions[rule.alarm] = step.condition
        if step.change is None or step.reason is None:
            return None  # the usual case: no allocation for a reading that changes nothing
        out = Outcome()
        key = AlarmKey(d.rules.ref.site, d.rules.ref.device, rule.alarm)
        shown = value if value is not None else d.current(rule.quantity, now)
        out.changes.append(
            AlarmChange(
                key=key,
                kind=step.change,
                severity=step.severity(rule),
                reason=step.reason,
                value=shown,
                level=step.level_name(rule),
            )
        )
        if (
            step.change in (ChangeKind.RAISE, ChangeKind.ESCALATE)
            and rule.shutoff_level is not None
            and d.rules.shutoff_valve is not None
        ):
            shutoff = rule.level_index(rule.shutoff_level)
            if shutoff is not None and step.condition.level >= shutoff:
                out.extend(self._valves.close(d.rules.shutoff_valve, key, Reason.GAS_ALARM, now))
        return out


def _has(reading: Reading, quantity: str) -> bool:
    if quantity == "temp_c":
        return any(name.startswith("temp_c") for name in reading.values)
    return quantity in reading.values


def _latched(ref: DeviceRef, alarm: AlarmType, reason: Reason) -> AlarmChange:
    return AlarmChange(
        key=AlarmKey(ref.site, ref.device, alarm),
        kind=ChangeKind.RAISE,
        severity=DEFAULT_SEVERITY[alarm],
        reason=reason,
        latched=True,
    )


def _apply_co(d: DeviceState, step: co_rule.CoStep, ppm: float) -> Outcome:
    """The CO state after `step`; the alarm change it implies, if any."""
    d.co = step.state
    out = Outcome()
    if step.change is not None and step.reason is not None:
        out.changes.append(
            AlarmChange(
                key=AlarmKey(d.rules.ref.site, d.rules.ref.device, AlarmType.CO),
                kind=step.change,
                severity=Severity.CRITICAL,
                reason=step.reason,
                value=ppm,
            )
        )
    return out
