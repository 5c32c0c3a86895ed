"""The closed loop in the overview (issue 12): per site its open incidents with their report
clocks, its hazards past their rectification deadline and today's self-report, and the
county's totals of them. Pure: what was read and `now` in, figures and their JSON out; the
reading is `gateway.overview.gather.read_loop`.

Each of the three owners is read on its own. One that cannot be read leaves its figures
`null` and says why under `unreadable`: a zero would claim "nothing late" where nothing was
seen, and the alarm figures beside it still stand.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from gateway.config.clockface import Clockface
from gateway.duty.model import Board, DailyCheck, Phase, Standing, board
from gateway.hazards.model import Hazard, HazardLevel, overdue
from gateway.incidents.model import ClockState, Deadlines, Incident, IncidentClocks, clocks

_LATE = (ClockState.MISSED, ClockState.DONE_LATE)


@dataclass(frozen=True, slots=True)
class LoopReads:
    """What was read of the three owners for the overview's sites at one `now`, each as
    rows or (None) with why not: the open incidents, the hazards not yet rectified (open or
    rectifying: only those can be overdue) and today's self-reports."""

    incidents: Sequence[Incident] | None = None
    hazards: Sequence[Hazard] | None = None
    checks: Mapping[str, DailyCheck] | None = None
    unreadable: Mapping[str, str] = field(default_factory=dict)  # owner -> why


@dataclass(frozen=True, slots=True)
class OpenIncident:
    incident: Incident
    clocks: IncidentClocks

    @property
    def report_overdue(self) -> bool:
        """A report still owed past its deadline: someone has to act now."""
        return ClockState.MISSED in (self.clocks.phone.state, self.clocks.written.state)

    @property
    def deadline_missed(self) -> bool:
        """Either report missed its deadline, made late since or still owed."""
        return self.clocks.phone.state in _LATE or self.clocks.written.state in _LATE


@dataclass(frozen=True, slots=True)
class SiteLoop:
    """One site's closed loop at `now`; a field is None when its owner could not be read."""

    site: str
    incidents: tuple[OpenIncident, ...] | None
    hazards_to_rectify: int | None
    overdue_hazards: tuple[int, ...] | None  # ids, oldest first
    overdue_major: int | None
    daily_check: Standing | None
    check: DailyCheck | None = None

    @property
    def open_incidents(self) -> int | None:
        return None if self.incidents is None else len(self.incidents)

    @property
    def incidents_deadline_missed(self) -> int | None:
        return _count(self.incidents, lambda i: i.deadline_missed)

    @property
    def incidents_report_overdue(self) -> int | None:
        return _count(self.incidents, lambda i: i.report_overdue)


def _count(items: Iterable[OpenIncident] | None, pred: Any) -> int | None:
    return None if items is None else sum(1 for i in items if pred(i))


@dataclass(frozen=True, slots=True)
class LoopFigures:
    """Every site's loop plus today's board (for its day, due time and phase)."""

    sites: dict[str, SiteLoop]
    day: date
    due_at: datetime
    phase: Phase
    unreadable: Mapping[str, str]


def loop_figures(
    reads: LoopReads,
    sites: Sequence[str],
    now: float,
    deadlines: Deadlines,
    zone_now: datetime,
    due: time,
    remind_at: time,
) -> LoopFigures:
    """Each of `sites`' loop at `now` (`zone_now` is the same instant in the gateway's zone:
    "today" is the zone's day)."""
    wanted = set(sites)
    incidents: dict[str, list[OpenIncident]] = {s: [] for s in sites}
    for inc in reads.incidents or ():
        if inc.site in wanted and inc.closed_at is None and inc.opened_at <= now:
            incidents[inc.site].append(OpenIncident(inc, clocks(inc, now, deadlines)))
    to_rectify = dict.fromkeys(sites, 0)
    late: dict[str, list[Hazard]] = {s: [] for s in sites}
    for h in reads.hazards or ():
        if h.site not in wanted or h.found_at > now:
            continue
        to_rectify[h.site] += 1
        if overdue(h, now):
            late[h.site].append(h)
    b: Board = board(sites, reads.checks or {}, zone_now, due, remind_at)
    out = {}
    for entry in b.entries:
        s = entry.site
        mine = sorted(incidents[s], key=lambda i: (i.incident.opened_at, i.incident.id))
        overdue_here = sorted(late[s], key=lambda h: h.id)
        out[s] = SiteLoop(
            site=s,
            incidents=tuple(mine) if reads.incidents is not None else None,
            hazards_to_rectify=to_rectify[s] if reads.hazards is not None else None,
            overdue_hazards=(
                tuple(h.id for h in overdue_here) if reads.hazards is not None else None
            ),
            overdue_major=(
                sum(1 for h in overdue_here if h.level is HazardLevel.MAJOR)
                if reads.hazards is not None
                else None
            ),
            daily_check=entry.standing if reads.checks is not None else None,
            check=entry.check,
        )
    return LoopFigures(out, b.day, b.due_at, b.phase, dict(reads.unreadable))


def missing_after_due(loop: SiteLoop, phase: Phase) -> bool:
    """Today's report not in once its due time has passed (before it, "missing" is only
    "not yet")."""
    return loop.daily_check is Standing.MISSING and phase is Phase.OVERDUE


# ----------------------------------------------------------------------------- JSON
def site_loop_json(f: LoopFigures, site: str, clock: Clockface) -> dict[str, Any]:
    """A site row's `closed_loop`: its counts and today's self-report."""
    loop = f.sites[site]
    check = loop.check
    return {
        "open_incidents": loop.open_incidents,
        "incidents_deadline_missed": loop.incidents_deadline_missed,
        "incidents_report_overdue": loop.incidents_report_overdue,
        "hazards_to_rectify": loop.hazards_to_rectify,
        "overdue_hazards": None if loop.overdue_hazards is None else len(loop.overdue_hazards),
        "overdue_major_hazards": loop.overdue_major,
        "daily_check": {
            "standing": loop.daily_check.value if loop.daily_check is not None else None,
            "missing_after_due": (
                missing_after_due(loop, f.phase) if loop.daily_check is not None else None
            ),
            "submitted_at": clock.iso(check.first_at) if check is not None else None,
        },
        "unreadable": dict(f.unreadable),
    }


def _total(values: Iterable[int | None]) -> int | None:
    listed = list(values)
    return None if any(v is None for v in listed) else sum(v for v in listed if v is not None)


def totals_loop_json(f: LoopFigures, sites: Collection[str], clock: Clockface) -> dict[str, Any]:
    """The county's `closed_loop` over `sites` (those the caller may read, after any filter)."""
    loops = [f.sites[s] for s in sites]
    duty_read = all(x.daily_check is not None for x in loops)
    return {
        "open_incidents": _total(x.open_incidents for x in loops),
        "incidents_deadline_missed": _total(x.incidents_deadline_missed for x in loops),
        "incidents_report_overdue": _total(x.incidents_report_overdue for x in loops),
        "hazards_to_rectify": _total(x.hazards_to_rectify for x in loops),
        "overdue_hazards": _total(
            None if x.overdue_hazards is None else len(x.overdue_hazards) for x in loops
        ),
        "overdue_major_hazards": _total(x.overdue_major for x in loops),
        "daily_checks": {
            "date": f.day.isoformat(),
            "due": clock.iso(f.due_at.timestamp()),
            "phase": f.phase.value,
            "submitted": _standing_count(loops, Standing.SUBMITTED) if duty_read else None,
            "late": _standing_count(loops, Standing.LATE) if duty_read else None,
            "missing": _standing_count(loops, Standing.MISSING) if duty_read else None,
            "missing_after_due": (
                sum(1 for x in loops if missing_after_due(x, f.phase)) if duty_read else None
            ),
        },
        "unreadable": dict(f.unreadable),
    }


def _standing_count(loops: Iterable[SiteLoop], standing: Standing) -> int:
    return sum(1 for x in loops if x.daily_check is standing)
