"""Whether a device is there and working: `device_offline` and `device_fault` alarms.

A device is offline while it is silent for longer than its stale window (measured from
start-up until first heard) or while its status topic says so; it is in fault while it
reports one, while a driver sees one (by source), or while it talks without giving a valid
primary reading. Each is raised once when it starts and cleared once when it ends.

Silence raises `device_offline` and leaves every other alarm as it is: losing contact never
clears anything.
"""

from __future__ import annotations

from rules.model import (
    DEFAULT_SEVERITY,
    AlarmChange,
    AlarmKey,
    AlarmType,
    ChangeKind,
    Instant,
    Outcome,
    Reason,
)
from rules.state import DeviceState


def seen(d: DeviceState, now: Instant) -> Outcome:
    """The device gave a sign of life (any message from it, not from the broker)."""
    if d.silent or d.heard_at is None:
        # Heard again after silence (or for the first time): the "talking without a
        # valid reading" window starts now, not when the device was last heard.
        d.primary_at = max(d.primary_at, now.mono)
    d.last_seen = now.mono
    d.heard_at = now.wall
    if not (d.silent or d.said_offline):
        return Outcome()
    d.silent = False
    d.said_offline = False
    return update_offline(d, Reason.BACK_ONLINE)


def said_offline(d: DeviceState, reason: Reason) -> Outcome:
    # A will is published by the broker, not the device: it is not a sign of life.
    d.said_offline = True
    return update_offline(d, reason)


def primary_reading(d: DeviceState, now: float) -> Outcome:
    """A reading carried the device's primary quantity: it is giving valid readings."""
    d.primary_at = now
    if not d.no_valid_reading:
        return Outcome()
    d.no_valid_reading = False
    return update_fault(d, Reason.VALID_READING_RETURNED)


def reported_fault(d: DeviceState, active: bool, reason: Reason) -> Outcome:
    """The device itself reported a fault, or that it is over."""
    d.fault_reported = active
    return update_fault(d, reason)


def driver_fault(d: DeviceState, source: str, active: bool, reason: Reason) -> Outcome:
    """A driver saw a fault from `source` (status bit, exception response), or its end."""
    if active:
        d.fault_sources.add(source)
    else:
        d.fault_sources.discard(source)
    return update_fault(d, reason)


def overdue(d: DeviceState, now: float) -> Outcome:
    """Silence past the stale window; talking without a valid reading for as long (`now`
    monotonic: a step of the wall clock makes no device silent)."""
    out = Outcome()
    rules = d.rules
    stale = rules.stale_after_s
    if not d.silent and now - d.last_seen > stale:
        d.silent = True
        out.extend(update_offline(d, Reason.SILENT))
    if (
        rules.primary_quantity is not None
        and not d.no_valid_reading
        and now - d.last_seen <= stale
        and now - d.primary_at > stale
    ):
        d.no_valid_reading = True
        out.extend(update_fault(d, Reason.NO_VALID_READING))
    return out


def restore(d: DeviceState, alarm: AlarmType, reason: Reason | None) -> None:
    """Seed the flags from an offline or fault alarm open when the gateway stopped, so that
    it clears when the device is back (a tamper alarm is latched: nothing to seed)."""
    if alarm is AlarmType.DEVICE_OFFLINE:
        d.silent = True
        d.offline_active = True
    elif alarm is AlarmType.DEVICE_FAULT and reason is not Reason.TAMPER:
        if reason is Reason.NO_VALID_READING:
            d.no_valid_reading = True
        else:
            d.fault_reported = True
        d.fault_active = True


def update_offline(d: DeviceState, reason: Reason) -> Outcome:
    want = d.silent or d.said_offline
    if want == d.offline_active:
        return Outcome()
    d.offline_active = want
    return _flagged(d, AlarmType.DEVICE_OFFLINE, want, reason)


def update_fault(d: DeviceState, reason: Reason) -> Outcome:
    want = d.fault_reported or d.no_valid_reading or bool(d.fault_sources)
    if want == d.fault_active:
        return Outcome()
    d.fault_active = want
    return _flagged(d, AlarmType.DEVICE_FAULT, want, reason)


def _flagged(d: DeviceState, alarm: AlarmType, raised: bool, reason: Reason) -> Outcome:
    out = Outcome()
    out.changes.append(
        AlarmChange(
            key=AlarmKey(d.rules.ref.site, d.rules.ref.device, alarm),
            kind=ChangeKind.RAISE if raised else ChangeKind.CLEAR,
            severity=DEFAULT_SEVERITY[alarm],
            reason=reason,
        )
    )
    return out
