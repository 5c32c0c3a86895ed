"""What the closed loop's clocks ask for at `now`: pure, no I/O, `now` always given.

Each `Reminder` has a key that names what it is about and when it fell due, so that the
caller sends each once: a self-report's day and site, an incident's report, a hazard's
deadline (a moved deadline is a new one, reminded again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum

from gateway.duty.model import DailyCheck, DueReason, due_actions
from gateway.hazards.model import Hazard, HazardStatus
from gateway.incidents.model import ClockState, Deadlines, Incident, clocks


class Kind(StrEnum):
    CHECK_REMIND = "check_remind"  # the self-report is not in at the reminder time
    CHECK_MISSING = "check_missing"  # the bureau's list of the sites missing at the due time
    PHONE_MISSED = "phone_missed"  # an incident's phone report is past its deadline
    WRITTEN_MISSED = "written_missed"  # an incident's written report is past its deadline
    HAZARD_DUE = "hazard_due"  # a hazard's deadline is near
    HAZARD_OVERDUE = "hazard_overdue"  # a hazard's deadline has passed, not rectified


# Who each kind reaches: contact roles and duty addressees (`gateway.notify.sending`), and for
# a hazard its responsible person first. `on_duty` falls back to the duty officers.
AUDIENCE: Mapping[Kind, tuple[str, ...]] = {
    Kind.CHECK_REMIND: ("on_duty",),
    Kind.CHECK_MISSING: ("bureau_on_duty",),
    Kind.PHONE_MISSED: ("bureau_on_duty", "on_duty"),
    Kind.WRITTEN_MISSED: ("bureau_on_duty", "on_duty"),
    Kind.HAZARD_DUE: (),
    Kind.HAZARD_OVERDUE: ("safety_manager",),
}
# The console's view each kind is about (the link in a group chat's message).
VIEW: Mapping[Kind, str] = {
    Kind.CHECK_REMIND: "checks",
    Kind.CHECK_MISSING: "checks",
    Kind.PHONE_MISSED: "incidents",
    Kind.WRITTEN_MISSED: "incidents",
    Kind.HAZARD_DUE: "hazards",
    Kind.HAZARD_OVERDUE: "hazards",
}


@dataclass(frozen=True, slots=True)
class Reminder:
    key: str
    kind: Kind
    site: str | None  # None: the bureau's own (the missing list)
    about: str  # what it is about: 每日安全自查, the incident's title, the hazard's location
    deadline: float  # the time it is about (epoch seconds)
    sites: tuple[str, ...] = ()  # the missing list's sites
    person: str | None = None  # a hazard's responsible person, as written in the ledger

    @property
    def to(self) -> tuple[str, ...]:
        return AUDIENCE[self.kind]


def daily_checks(
    now_in_zone: datetime,
    sites: Sequence[str],
    checks_of_the_day: Mapping[str, DailyCheck],
    due: time,
    remind_at: time,
) -> list[Reminder]:
    """From the reminder time, one per site not in; from the due time, one list of them for
    the bureau (the per-site reminders of a day the gateway slept through are not sent late:
    past the due time the missing list is what is left to say)."""
    actions = due_actions(now_in_zone, sites, checks_of_the_day, due, remind_at)
    day = now_in_zone.date()
    due_at = datetime.combine(day, due, now_in_zone.tzinfo).timestamp()
    reminders = [
        Reminder(f"check/{day}/{a.site}/remind", Kind.CHECK_REMIND, a.site, "每日安全自查", due_at)
        for a in actions
        if a.reason is DueReason.REMIND
    ]
    missing = tuple(a.site for a in actions if a.reason is DueReason.MISSING)
    if missing:
        reminders.append(
            Reminder(
                f"check/{day}/missing",
                Kind.CHECK_MISSING,
                None,
                "每日安全自查",
                due_at,
                sites=missing,
            )
        )
    return reminders


def incidents(
    open_incidents: Iterable[Incident], now: float, deadlines: Deadlines
) -> list[Reminder]:
    """One alert per report an open incident has missed (a late report, once made, is done)."""
    out = []
    for i in open_incidents:
        if i.closed_at is not None:
            continue
        c = clocks(i, now, deadlines)
        for kind, name, clock in (
            (Kind.PHONE_MISSED, "phone", c.phone),
            (Kind.WRITTEN_MISSED, "written", c.written),
        ):
            if clock.state is ClockState.MISSED:
                out.append(Reminder(f"incident/{i.id}/{name}", kind, i.site, i.title, clock.due_at))
    return out


_RECTIFIED = (HazardStatus.CLOSED, HazardStatus.AWAITING_VERIFICATION)


def hazards(open_hazards: Iterable[Hazard], now: float, before_s: float) -> list[Reminder]:
    """For each hazard not closed and with a deadline: a reminder from `before_s` ahead of it,
    and once it has passed, overdue. A hazard awaiting verification is rectified as far as its
    institution goes: the bureau's check is not the responsible person's to chase."""
    out = []
    for h in open_hazards:
        if h.deadline is None or h.status in (
            HazardStatus.CLOSED,
            HazardStatus.AWAITING_VERIFICATION,
        ):
            continue
        stamp = f"hazard/{h.id}/{int(h.deadline)}"
        if now >= h.deadline:
            out.append(Reminder(f"{stamp}/overdue", Kind.HAZARD_OVERDUE, h.site, h.location,
                                h.deadline, person=h.responsible))  # fmt: skip
        elif now >= h.deadline - before_s:
            out.append(Reminder(f"{stamp}/due", Kind.HAZARD_DUE, h.site, h.location, h.deadline,
                                person=h.responsible))  # fmt: skip
    return out
