"""The rule engine: normalised inputs in, alarm changes and commands out.

No I/O, no asyncio, no clock: every entry point takes `now`. State is per device and
lives in this object; the shell feeds inputs in arrival order and calls `tick(now)`
about once a second so that delays, silence and valve confirmation deadlines run out.

Invariants worth knowing before changing anything here:
- a value is only acted on while fresh (age <= the device's stale window); a stale or
  missing value never raises, never clears, and is never taken as 0;
- silence raises `device_offline` and leaves every other alarm as it is;
- the engine only ever asks for `close_valve`; opening gas is a person's decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from rules import co as co_rule
from rules import thresholds as th
from rules.model import (
    DEFAULT_SEVERITY,
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
    FaultReport,
    Outcome,
    Reading,
    Reason,
    Severity,
)


@dataclass(frozen=True, slots=True)
class DeviceRules:
    """Everything the engine needs to know about one configured device."""

    ref: DeviceRef
    type: DeviceType
    thresholds: tuple[th.ThresholdRule, ...] = ()
    co: co_rule.CoRule | None = None
    report_interval_s: float = 60.0
    offline_after_intervals: int = 3
    primary_quantity: str | None = None
    shutoff_valve: DeviceRef | None = None
    valve_confirm_timeout_s: float = 10.0
    valve_retry_interval_s: float = 30.0

    @property
    def stale_after_s(self) -> float:
        return self.report_interval_s * self.offline_after_intervals


@dataclass(slots=True)
class _Valve:
    close_sent_at: float | None = None
    confirm_deadline: float | None = None
    next_retry: float | None = None
    cause: AlarmKey | None = None
    failure_active: bool = False
    reported_open: bool | None = None


@dataclass(slots=True)
class _Device:
    rules: DeviceRules
    last_seen: float  # start-up time until first heard: silence is measured from it
    primary_at: float
    heard_at: float | None = None
    values: dict[str, tuple[float, float]] = field(default_factory=dict)
    said_offline: bool = False
    silent: bool = False
    offline_active: bool = False
    fault_reported: bool = False
    no_valid_reading: bool = False
    fault_active: bool = False
    fault_sources: set[str] = field(default_factory=set)  # driver-seen faults, by source
    conditions: dict[AlarmType, th.Condition] = field(default_factory=dict)
    co: co_rule.CoState | None = None
    valve: _Valve | None = None

    def fresh(self, quantity: str, now: float) -> bool:
        got = self.values.get(quantity)
        return got is not None and now - got[1] <= self.rules.stale_after_s


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What the engine believes about a device: for the API and the console."""

    online: bool
    fault: bool
    last_seen: float | None  # None: never heard from since start-up
    values: Mapping[str, tuple[float, float]]


class RuleEngine:
    def __init__(self, devices: Iterable[DeviceRules], now: float) -> None:
        self._devices: dict[DeviceRef, _Device] = {}
        self._detectors_of_valve: dict[DeviceRef, list[DeviceRef]] = {}
        for rules in devices:
            # Silence is measured from start-up: a device we have never heard from goes
            # offline after its stale window, not at once.
            dev = _Device(rules=rules, last_seen=now, primary_at=now)
            if rules.type is DeviceType.GAS_VALVE:
                dev.valve = _Valve()
            if rules.co is not None:
                dev.co = co_rule.CoState(measured_at=now, integrated_to=now)
            self._devices[rules.ref] = dev
            if rules.shutoff_valve is not None:
                self._detectors_of_valve.setdefault(rules.shutoff_valve, []).append(rules.ref)

    # ---------------------------------------------------------------- queries
    def knows(self, ref: DeviceRef) -> bool:
        return ref in self._devices

    def status(self, ref: DeviceRef) -> DeviceStatus:
        d = self._devices[ref]
        return DeviceStatus(
            online=not d.offline_active,
            fault=d.fault_active,
            last_seen=d.heard_at,
            values=dict(d.values),
        )

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
    def on_reading(self, reading: Reading, now: float) -> Outcome:
        d = self._devices[reading.ref]
        out = self._seen(d, now)
        rules = d.rules
        # Quantities whose last value had gone stale before this reading (see below).
        # (Only a condition under way can be affected: with none, nothing to compute.)
        was_stale = (
            {
                rule.alarm
                for rule in rules.thresholds
                if _has(reading, rule.quantity) and self._current(d, rule.quantity, now) is None
            }
            if d.conditions
            else ()
        )
        for name, value in reading.values.items():
            d.values[name] = (value, now)
        if rules.primary_quantity is not None and _has(reading, rules.primary_quantity):
            d.primary_at = now
            if d.no_valid_reading:
                d.no_valid_reading = False
                out.extend(self._update_fault(d, Reason.VALID_READING_RETURNED))
        values = reading.values
        for rule in rules.thresholds:
            q = rule.quantity
            if q != "temp_c":
                if q not in values:
                    continue
                current = values[q]  # just stored at `now`: fresh
            else:
                hottest = self._current(d, q, now) if _has(reading, q) else None
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
            out.extend(self._apply_co(d, step, ppm))
        if d.valve is not None and "open" in reading.values:
            out.extend(self._valve_feedback(d, is_open=reading.values["open"] >= 0.5, now=now))
        return out

    def on_event(self, event: DeviceEvent, now: float) -> Outcome:
        d = self._devices[event.ref]
        out = self._seen(d, now)
        kind = event.event
        if kind is EventKind.PRESSED:
            out.changes.append(_latched(event.ref, AlarmType.FIRE_BUTTON, Reason.BUTTON_PRESSED))
        elif kind is EventKind.SMOKE:
            out.changes.append(_latched(event.ref, AlarmType.SMOKE, Reason.SMOKE_DETECTED))
        elif kind is EventKind.TAMPER:
            out.changes.append(_latched(event.ref, AlarmType.DEVICE_FAULT, Reason.TAMPER))
        elif kind is EventKind.FAULT:
            d.fault_reported = True
            out.extend(self._update_fault(d, Reason.FAULT_REPORTED))
        elif kind is EventKind.FAULT_CLEARED:
            d.fault_reported = False
            out.extend(self._update_fault(d, Reason.FAULT_CLEARED))
        # SELF_TEST proves the device alive (handled by _seen) and raises nothing.
        return out

    def on_availability(self, av: Availability, now: float) -> Outcome:
        d = self._devices[av.ref]
        if av.online:
            return self._seen(d, now)
        # A will is published by the broker, not the device: it is not a sign of life.
        d.said_offline = True
        return self._update_offline(d, av.reason or Reason.STATUS_OFFLINE)

    def on_fault(self, report: FaultReport, now: float) -> Outcome:
        """A driver saw a fault (status bit, exception response); the device did answer."""
        d = self._devices[report.ref]
        out = self._seen(d, now)
        if report.active:
            d.fault_sources.add(report.source)
        else:
            d.fault_sources.discard(report.source)
        return out.extend_with(self._update_fault(d, report.reason))

    def on_command_result(self, result: CommandResult, now: float) -> Outcome:
        d = self._devices[result.ref]
        out = self._seen(d, now)
        if result.cmd is CommandKind.TRIP and not result.ok:
            # Power was not cut although someone (or a rule) asked for it: a person must know.
            # Latched: whether the circuit is now safe is for a person on site to say.
            out.changes.append(
                AlarmChange(
                    key=AlarmKey(result.ref.site, result.ref.device, AlarmType.TRIP_FAILURE),
                    kind=ChangeKind.RAISE,
                    severity=DEFAULT_SEVERITY[AlarmType.TRIP_FAILURE],
                    reason=Reason.TRIP_NOT_CONFIRMED,
                    latched=True,
                )
            )
            return out
        if d.valve is None:
            return out
        if result.cmd is CommandKind.OPEN_VALVE and result.ok:
            # A person reopened it (the API allows that only with no gas alarm open) and
            # the valve answered: it works, so an old failure is over.
            return out.extend_with(self._valve_confirmed(d, Reason.VALVE_RESPONDED))
        if result.cmd is not CommandKind.CLOSE_VALVE:
            return out
        if result.ok:
            out.extend(self._valve_confirmed(d, Reason.VALVE_CONFIRMED))
        elif not d.valve.failure_active:
            d.valve.failure_active = True
            out.changes.append(_failure(d.rules.ref, Reason.VALVE_REFUSED))
        return out

    def on_manual_open(self, ref: DeviceRef) -> None:
        """A person sent `open_valve`: stop re-asserting an earlier close on this valve."""
        d = self._devices[ref]
        if d.valve is not None:
            d.valve.close_sent_at = None
            d.valve.confirm_deadline = None
            d.valve.next_retry = None

    def restore(
        self,
        key: AlarmKey,
        level: str | None,
        reason: Reason | None,
        now: float,
    ) -> Outcome:
        """Seed state from an alarm that was open when the gateway stopped.

        Without this, a reloaded alarm could never clear (the engine would think the
        condition normal and stay silent) and a closed valve would not be re-asserted.
        """
        out = Outcome()
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
                    out.extend(self._close_valve(d.rules.shutoff_valve, key, Reason.RESTORED, now))
        if key.type is AlarmType.CO and d.co is not None:
            d.co = co_rule.restored(now)
        elif key.type is AlarmType.DEVICE_OFFLINE:
            d.silent = True
            d.offline_active = True
        elif key.type is AlarmType.DEVICE_FAULT and reason is not Reason.TAMPER:
            if reason is Reason.NO_VALID_READING:
                d.no_valid_reading = True
            else:
                d.fault_reported = True
            d.fault_active = True
        elif key.type is AlarmType.VALVE_FAILURE and d.valve is not None:
            d.valve.failure_active = True
        return out

    def tick(self, now: float) -> Outcome:
        out = Outcome()
        for d in self._devices.values():
            rules = d.rules
            stale = rules.stale_after_s
            if not d.silent and now - d.last_seen > stale:
                d.silent = True
                out.extend(self._update_offline(d, Reason.SILENT))
            if (
                rules.primary_quantity is not None
                and not d.no_valid_reading
                and now - d.last_seen <= stale
                and now - d.primary_at > stale
            ):
                d.no_valid_reading = True
                out.extend(self._update_fault(d, Reason.NO_VALID_READING))
            for rule in rules.thresholds:
                cond = d.conditions.get(rule.alarm)
                if cond is None or cond.phase not in (th.Phase.PENDING, th.Phase.CLEARING):
                    continue
                fresh = self._current(d, rule.quantity, now) is not None
                applied = self._apply_step(d, rule, th.tick(rule, cond, now, fresh), None, now)
                if applied is not None:
                    out.extend(applied)
            if rules.co is not None and d.co is not None and d.co.ppm is not None:
                fresh = d.fresh("co_ppm", now)
                step = co_rule.advance(rules.co, d.co, now, fresh, stale)
                out.extend(self._apply_co(d, step, d.co.ppm))
            if d.valve is not None:
                out.extend(self._valve_deadlines(d, now))
        return out

    # ---------------------------------------------------------------- internals
    def _current(self, d: _Device, quantity: str, now: float) -> float | None:
        """The fresh value of `quantity`; for `temp_c`, the hottest fresh channel."""
        if quantity != "temp_c":
            return d.values[quantity][0] if d.fresh(quantity, now) else None
        hottest: float | None = None
        for name, (value, at) in d.values.items():
            if name.startswith("temp_c") and now - at <= d.rules.stale_after_s:
                hottest = value if hottest is None else max(hottest, value)
        return hottest

    def _apply_step(
        self,
        d: _Device,
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
        shown = value if value is not None else self._current(d, rule.quantity, now)
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
                out.extend(self._close_valve(d.rules.shutoff_valve, key, Reason.GAS_ALARM, now))
        return out

    def _apply_co(self, d: _Device, step: co_rule.CoStep, ppm: float) -> Outcome:
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

    def _seen(self, d: _Device, now: float) -> Outcome:
        if d.silent or d.heard_at is None:
            # Heard again after silence (or for the first time): the "talking without a
            # valid reading" window starts now, not when the device was last heard.
            d.primary_at = max(d.primary_at, now)
        d.last_seen = now
        d.heard_at = now
        if not (d.silent or d.said_offline):
            return Outcome()
        d.silent = False
        d.said_offline = False
        return self._update_offline(d, Reason.BACK_ONLINE)

    def _update_offline(self, d: _Device, reason: Reason) -> Outcome:
        want = d.silent or d.said_offline
        return self._flag(d, AlarmType.DEVICE_OFFLINE, "offline_active", want, reason)

    def _update_fault(self, d: _Device, reason: Reason) -> Outcome:
        want = d.fault_reported or d.no_valid_reading or bool(d.fault_sources)
        return self._flag(d, AlarmType.DEVICE_FAULT, "fault_active", want, reason)

    def _flag(self, d: _Device, alarm: AlarmType, attr: str, want: bool, reason: Reason) -> Outcome:
        out = Outcome()
        if want == getattr(d, attr):
            return out
        setattr(d, attr, want)
        out.changes.append(
            AlarmChange(
                key=AlarmKey(d.rules.ref.site, d.rules.ref.device, alarm),
                kind=ChangeKind.RAISE if want else ChangeKind.CLEAR,
                severity=DEFAULT_SEVERITY[alarm],
                reason=reason,
            )
        )
        return out

    # ------------------------------------------------------------ gas shut-off
    def _close_valve(
        self, valve_ref: DeviceRef, cause: AlarmKey, reason: Reason, now: float
    ) -> Outcome:
        out = Outcome()
        valve_dev = self._devices.get(valve_ref)
        if valve_dev is None or valve_dev.valve is None:
            return out  # the config loader refuses this; never fail the alarm over it
        v = valve_dev.valve
        if v.confirm_deadline is not None and now < v.confirm_deadline:
            return out  # a close is already on its way and not yet overdue
        rules = valve_dev.rules
        v.close_sent_at = now
        v.confirm_deadline = now + rules.valve_confirm_timeout_s
        v.next_retry = None
        v.cause = cause
        out.commands.append(Command(valve_ref, CommandKind.CLOSE_VALVE, cause, reason))
        return out

    def _valve_feedback(self, d: _Device, *, is_open: bool, now: float) -> Outcome:
        v = d.valve
        assert v is not None
        v.reported_open = is_open
        if not is_open:
            return self._valve_confirmed(d, Reason.VALVE_CONFIRMED)
        out = Outcome()
        if v.confirm_deadline is not None:
            return out  # still moving, or overdue: the deadline logic handles it
        cause = self._gas_condition_on(d.rules.ref)
        if cause is not None:
            # Gas is still abnormal and the valve says it is open (reopened by hand, or it
            # drifted): close it again. Closing is always safe; opening never automatic.
            out.extend(self._close_valve(d.rules.ref, cause, Reason.VALVE_REPORTED_OPEN, now))
        return out

    def _valve_confirmed(self, d: _Device, reason: Reason) -> Outcome:
        v = d.valve
        assert v is not None
        out = Outcome()
        v.close_sent_at = None
        v.confirm_deadline = None
        v.next_retry = None
        if v.failure_active:
            v.failure_active = False
            out.changes.append(
                AlarmChange(
                    key=AlarmKey(d.rules.ref.site, d.rules.ref.device, AlarmType.VALVE_FAILURE),
                    kind=ChangeKind.CLEAR,
                    severity=Severity.CRITICAL,
                    reason=reason,
                )
            )
        return out

    def _valve_deadlines(self, d: _Device, now: float) -> Outcome:
        v = d.valve
        assert v is not None
        out = Outcome()
        if v.confirm_deadline is None or now < v.confirm_deadline:
            return out
        if not v.failure_active:
            v.failure_active = True
            out.changes.append(_failure(d.rules.ref, Reason.VALVE_NOT_CONFIRMED))
        if v.next_retry is None:
            v.next_retry = now  # resend at once: the first command may simply be lost
        if now >= v.next_retry:
            # Keep trying only while the gas is still abnormal: once it is normal a person
            # may be working on the valve, and the gateway must not fight them.
            cause = self._gas_condition_on(d.rules.ref)
            if cause is not None:
                out.commands.append(
                    Command(d.rules.ref, CommandKind.CLOSE_VALVE, cause, Reason.VALVE_NOT_CONFIRMED)
                )
            v.next_retry = now + d.rules.valve_retry_interval_s
        return out

    def _gas_condition_on(self, valve_ref: DeviceRef) -> AlarmKey | None:
        """The gas alarm, if any, at or above its shut-off level on a detector this valve
        protects (a pre-alarm never closes the valve)."""
        for det_ref in self._detectors_of_valve.get(valve_ref, ()):
            det = self._devices[det_ref]
            for rule in det.rules.thresholds:
                if rule.shutoff_level is None:
                    continue
                cond = det.conditions.get(rule.alarm)
                shutoff = rule.level_index(rule.shutoff_level)
                if (
                    cond is not None
                    and cond.abnormal
                    and shutoff is not None
                    and cond.level >= shutoff
                ):
                    return AlarmKey(det_ref.site, det_ref.device, rule.alarm)
        return None


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


def _failure(ref: DeviceRef, reason: Reason) -> AlarmChange:
    return AlarmChange(
        key=AlarmKey(ref.site, ref.device, AlarmType.VALVE_FAILURE),
        kind=ChangeKind.RAISE,
        severity=Severity.CRITICAL,
        reason=reason,
    )
