"""Supervision of gas shut-off: what the engine asks of valves (trips are `rules.trip`).

A gas alarm at or above its shut-off level closes the valve that protects the detector; the
close must be confirmed (by the command result or the valve reporting itself closed) within
the valve's confirm timeout, or `valve_failure` is raised and the close is sent again every
retry interval for as long as the gas is still abnormal. The engine only ever asks for
`close_valve`: opening gas is a person's decision, and once a person has opened it the
gateway stops re-asserting the close.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.model import (
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
    Severity,
)
from rules.state import DeviceState


class ValveSupervisor:
    """The valves among `devices` and the detectors each one protects."""

    def __init__(self, devices: Mapping[DeviceRef, DeviceState]) -> None:
        self._devices = devices
        self._detectors_of_valve: dict[DeviceRef, list[DeviceRef]] = {}
        for ref, d in devices.items():
            if d.rules.shutoff_valve is not None:
                self._detectors_of_valve.setdefault(d.rules.shutoff_valve, []).append(ref)

    def close(self, valve_ref: DeviceRef, cause: AlarmKey, reason: Reason, now: float) -> Outcome:
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

    def on_command_result(self, d: DeviceState, result: CommandResult) -> Outcome:
        out = Outcome()
        if d.valve is None:
            return out
        if result.cmd is CommandKind.OPEN_VALVE and result.ok:
            # A person reopened it (the API allows that only with no gas alarm open) and
            # the valve answered: it works, so an old failure is over.
            return _confirmed(d, Reason.VALVE_RESPONDED)
        if result.cmd is not CommandKind.CLOSE_VALVE:
            return out
        if result.ok:
            out.extend(_confirmed(d, Reason.VALVE_CONFIRMED))
        elif not d.valve.failure_active:
            d.valve.failure_active = True
            out.changes.append(_failure(d.rules.ref, Reason.VALVE_REFUSED))
        return out

    def on_feedback(self, d: DeviceState, *, is_open: bool, now: float) -> Outcome:
        """The valve reported its position."""
        v = d.valve
        assert v is not None
        v.reported_open = is_open
        if not is_open:
            return _confirmed(d, Reason.VALVE_CONFIRMED)
        out = Outcome()
        if v.confirm_deadline is not None:
            return out  # still moving, or overdue: the deadline logic handles it
        cause = self._gas_condition_on(d.rules.ref)
        if cause is not None:
            # Gas is still abnormal and the valve says it is open (reopened by hand, or it
            # drifted): close it again. Closing is always safe; opening never automatic.
            out.extend(self.close(d.rules.ref, cause, Reason.VALVE_REPORTED_OPEN, now))
        return out

    def deadlines(self, d: DeviceState, now: float) -> Outcome:
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


def manual_open(d: DeviceState) -> None:
    """A person sent `open_valve`: stop re-asserting an earlier close on this valve."""
    if d.valve is not None:
        d.valve.close_sent_at = None
        d.valve.confirm_deadline = None
        d.valve.next_retry = None


def _confirmed(d: DeviceState, reason: Reason) -> Outcome:
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


def _failure(ref: DeviceRef, reason: Reason) -> AlarmChange:
    return AlarmChange(
        key=AlarmKey(ref.site, ref.device, AlarmType.VALVE_FAILURE),
        kind=ChangeKind.RAISE,
        severity=Severity.CRITICAL,
        reason=reason,
    )
