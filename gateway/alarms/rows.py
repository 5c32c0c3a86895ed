"""The typed rows the alarm store reads back for others (the report, the overview): frozen,
plain values, so that no reader needs the store's SQL or the book's mutable `Alarm`.

`CommandRecord` (defined in `gateway.actuate.wire`) is written and read; `AlarmRow` and
`LifecycleEntry` are the history of an alarm as the readers of past periods need it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.actuate.wire import CommandRecord
from gateway.alarms.book import Action, Alarm

__all__ = ["LIFECYCLE_ACTIONS", "AlarmRow", "CommandRecord", "LifecycleEntry"]

# The timeline entries that change an alarm's state, acknowledgement or severity: what a
# reader replaying the history needs (notification and command entries are left out).
LIFECYCLE_ACTIONS: tuple[str, ...] = (
    Action.RAISED.value,
    Action.RETURNED.value,
    Action.REPEATED.value,
    Action.ESCALATED.value,
    Action.CLEARED.value,
    Action.ACKED.value,
    Action.CLOSED.value,
)


@dataclass(frozen=True, slots=True)
class LifecycleEntry:
    """One state-changing entry of an alarm's timeline (notification entries are left out)."""

    at: float
    action: str
    actor: str
    severity: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """An alarm as stored, with its lifecycle entries in order (may be empty)."""

    id: str
    site: str
    device: str
    type: str
    severity: str
    state: str
    raised_at: float
    acked_at: float | None = None
    acked_by: str | None = None
    cleared_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    disposition: str | None = None
    events: tuple[LifecycleEntry, ...] = ()

    @classmethod
    def of(cls, a: Alarm) -> AlarmRow:
        """The row of an alarm the book holds: the book is ahead of the store by at most
        one commit, so a reader of open alarms lays these over what the store returned."""
        events = tuple(
            LifecycleEntry(e.at, e.action.value, e.actor, e.severity.value if e.severity else None)
            for e in a.timeline
            if e.action.value in LIFECYCLE_ACTIONS
        )
        return cls(
            id=a.id, site=a.site, device=a.device, type=a.type.value, severity=a.severity.value,
            state=a.state.value, raised_at=a.raised_at, acked_at=a.acked_at, acked_by=a.acked_by,
            cleared_at=a.cleared_at, closed_at=a.closed_at, closed_by=a.closed_by,
            disposition=a.disposition.value if a.disposition else None, events=events,
        )  # fmt: skip
