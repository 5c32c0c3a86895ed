"""Incidents and their report clocks, as values and pure functions: no I/O, no clock of its
own (`now` is always given), so every deadline is tested at its boundary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rules.model import AlarmType, Severity

# Alarms of a hazard at the site. The others say something of the equipment (a detector
# offline, a valve that did not close, the gateway itself): real ones are hazards to fix, not
# emergencies to report to the bureau.
EMERGENCY_TYPES = frozenset(
    {
        AlarmType.GAS_LEAK,
        AlarmType.CO,
        AlarmType.SMOKE,
        AlarmType.FIRE_BUTTON,
        AlarmType.RESIDUAL_CURRENT,
        AlarmType.OVERTEMPERATURE,
        AlarmType.OVERCURRENT,
    }
)


class ReportKind(StrEnum):
    PHONE = "phone"
    WRITTEN = "written"
    FOLLOW_UP = "follow_up"


class ClockState(StrEnum):
    RUNNING = "running"  # not done, still in time
    DONE = "done"  # done by its deadline (the deadline itself counts as in time)
    DONE_LATE = "done_late"
    MISSED = "missed"  # not done, and its deadline has passed


class Opening(StrEnum):
    """Why a closed alarm does or does not open an incident (the reason, not a bool)."""

    CONFIRMED_EMERGENCY = "confirmed_emergency"
    NOT_REAL = "not_real"  # false alarm, test, maintenance
    NOT_CRITICAL = "not_critical"
    NOT_AN_EMERGENCY = "not_an_emergency"  # an equipment alarm: see EMERGENCY_TYPES

    @property
    def opens(self) -> bool:
        return self is Opening.CONFIRMED_EMERGENCY


def should_open(alarm_type: AlarmType, severity: Severity, disposition: str) -> Opening:
    """A critical alarm of a hazard that a person confirmed as real opens an incident."""
    if disposition != "real":
        return Opening.NOT_REAL
    if alarm_type not in EMERGENCY_TYPES:
        return Opening.NOT_AN_EMERGENCY
    if severity is not Severity.CRITICAL:
        return Opening.NOT_CRITICAL
    return Opening.CONFIRMED_EMERGENCY


@dataclass(frozen=True, slots=True)
class PhoneReport:
    to_whom: str
    at: float
    by: str


@dataclass(frozen=True, slots=True)
class WrittenReport:
    what_happened: str
    where: str
    people_affected: str
    measures_taken: str
    current_state: str
    follow_up: str
    at: float
    by: str


@dataclass(frozen=True, slots=True)
class FollowUp:
    at: float
    by: str
    text: str


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    site: str
    alarm_id: str | None
    title: str
    opened_at: float
    opened_by: str
    phone_report: PhoneReport | None = None
    written_report: WrittenReport | None = None
    follow_ups: tuple[FollowUp, ...] = ()
    closed_at: float | None = None
    closed_by: str | None = None
    close_note: str | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class CloseRefusal(StrEnum):
    """Why an incident cannot be closed (the reason, not a bool)."""

    ALREADY_CLOSED = "already_closed"
    # The written report is what the bureau files; an incident closed without it would
    # leave the bureau's record with nothing in it.
    NO_WRITTEN_REPORT = "no_written_report"


def close_refusal(incident: Incident) -> CloseRefusal | None:
    """None when `incident` may be closed now."""
    if not incident.is_open:
        return CloseRefusal.ALREADY_CLOSED
    if incident.written_report is None:
        return CloseRefusal.NO_WRITTEN_REPORT
    return None


def takes_report(incident: Incident, kind: ReportKind) -> bool:
    """A closed incident takes no phone or written report (its clocks are settled); a
    follow-up may still come after (what the investigation found, a repair done)."""
    return incident.is_open or kind is ReportKind.FOLLOW_UP


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long after an incident opens each report is due, in seconds."""

    phone_s: float
    written_s: float

    @classmethod
    def from_minutes(cls, phone: int, written: int) -> Deadlines:
        return cls(phone * 60.0, written * 60.0)


@dataclass(frozen=True, slots=True)
class ReportClock:
    due_at: float
    done_at: float | None
    state: ClockState
    # Until the deadline; negative once missed (how late), None once done.
    seconds_left: float | None


@dataclass(frozen=True, slots=True)
class IncidentClocks:
    phone: ReportClock
    written: ReportClock


def report_clock(
    opened_at: float, limit_s: float, done_at: float | None, now: float
) -> ReportClock:
    due_at = opened_at + limit_s
    if done_at is not None:
        state = ClockState.DONE if done_at <= due_at else ClockState.DONE_LATE
        return ReportClock(due_at, done_at, state, None)
    state = ClockState.RUNNING if now <= due_at else ClockState.MISSED
    return ReportClock(due_at, None, state, due_at - now)


def clocks(incident: Incident, now: float, deadlines: Deadlines) -> IncidentClocks:
    """Where each report stands at `now`. Wall time, not monotonic: the deadlines are the
    bureau's, counted from a time on record, and outlive the process that started them."""
    phone = incident.phone_report
    written = incident.written_report
    return IncidentClocks(
        report_clock(incident.opened_at, deadlines.phone_s, phone.at if phone else None, now),
        report_clock(incident.opened_at, deadlines.written_s, written.at if written else None, now),
    )
