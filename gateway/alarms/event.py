"""`AlarmEvent`: one alarm change as every stage after the book sees it, frozen.

The book's `Alarm` is its own working copy and changes in place with the next transition;
what the store commits and the fan-out publishes must be the alarm as it was at this change,
so each transition takes an `AlarmSnapshot`. Times are epoch seconds; JSON is made only at
the edges (`gateway.alarms.wire`, the time-series line, notifications' text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.alarms.book import Action, Alarm, AlarmState, Disposition
from gateway.config.inventory import Inventory
from rules.model import AlarmKey, AlarmType, DeviceRef, Severity


@dataclass(frozen=True, slots=True)
class AlarmSnapshot:
    """An alarm's fields at one moment (its timeline is the store's)."""

    id: str
    site: str
    device: str
    type: AlarmType
    severity: Severity
    state: AlarmState
    raised_at: float
    level: str | None
    latched: bool
    acked: bool
    value: float | None
    peak: float | None
    count: int
    reason: str | None
    acked_at: float | None
    acked_by: str | None
    cleared_at: float | None
    closed_at: float | None
    closed_by: str | None
    disposition: Disposition | None
    note: str | None
    updated_at: float

    @property
    def key(self) -> AlarmKey:
        return AlarmKey(self.site, self.device, self.type)

    @classmethod
    def of(cls, a: Alarm) -> AlarmSnapshot:
        return cls(
            a.id,
            a.site,
            a.device,
            a.type,
            a.severity,
            a.state,
            a.raised_at,
            a.level,
            a.latched,
            a.acked,
            a.value,
            a.peak,
            a.count,
            a.reason,
            a.acked_at,
            a.acked_by,
            a.cleared_at,
            a.closed_at,
            a.closed_by,
            a.disposition,
            a.note,
            a.updated_at,
        )


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """What changed (`change`), the alarm after it, and the context people need to read it."""

    change: Action
    alarm: AlarmSnapshot
    location: str | None = None
    maintenance: bool = False  # the device is in a maintenance window: recorded, not pushed


class AlarmContext:
    """What an event carries beside the alarm: where its device is, whether it is in a
    maintenance window (the windows are the notification side's: asked, not owned)."""

    def __init__(self, inventory: Inventory, in_maintenance: Callable[[str, str], bool]) -> None:
        self._inventory = inventory
        self._in_maintenance = in_maintenance

    def location(self, site: str, device: str) -> str | None:
        installed = self._inventory.get(DeviceRef(site, device))
        return installed.config.location if installed is not None else None

    def in_maintenance(self, site: str, device: str) -> bool:
        return self._in_maintenance(site, device)

    def event(self, alarm: Alarm, change: Action) -> AlarmEvent:
        return AlarmEvent(
            change,
            AlarmSnapshot.of(alarm),
            self.location(alarm.site, alarm.device),
            self._in_maintenance(alarm.site, alarm.device),
        )
