"""The self-report and the roster as values, and the decisions about them: pure, no I/O, the
clock passed in (`now` as an aware datetime in the gateway's zone)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Final

BUREAU_SCOPE: Final = "bureau"  # the roster's scope of the bureau's own duty


class CheckResult(StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    NOT_APPLICABLE = "not_applicable"


class InvalidCheck(ValueError):
    """A self-report that does not answer the configured checklist, once per item."""


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    item: str
    result: CheckResult
    note: str = ""


@dataclass(frozen=True, slots=True)
class DailyCheck:
    site: str
    day: date
    answers: tuple[CheckAnswer, ...]
    submitted_at: float
    submitted_by: str
    # The first submission's time: a resubmission before the due time keeps it, so that a
    # correction never makes a report look later (or earlier) than it first came in.
    first_submitted_at: float | None = None

    @property
    def first_at(self) -> float:
        return self.submitted_at if self.first_submitted_at is None else self.first_submitted_at


def checked(answers: Iterable[CheckAnswer], items: Sequence[str]) -> tuple[CheckAnswer, ...]:
    """`answers` in the checklist's order; InvalidCheck names every unknown, repeated and
    missing item (a partial inspection is not an inspection)."""
    given = list(answers)
    seen: dict[str, CheckAnswer] = {}
    problems = []
    for a in given:
        if a.item not in items:
            problems.append(f"unknown item {a.item!r}")
        elif a.item in seen:
            problems.append(f"item {a.item!r} answered twice")
        seen.setdefault(a.item, a)
    missing = [i for i in items if i not in seen]
    if missing:
        problems.append(f"missing items: {', '.join(missing)}")
    if problems:
        raise InvalidCheck("; ".join(problems))
    return tuple(seen[i] for i in items)


def parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


# ------------------------------------------------------------------------------ the board
class Standing(StrEnum):
    """A site's self-report of one day."""

    SUBMITTED = "submitted"  # first came in before the due time
    LATE = "late"  # first came in at or after the due time
    MISSING = "missing"  # not in (yet: see the board's phase)


class Phase(StrEnum):
    """Where the day is, for the sites not in yet."""

    OPEN = "open"  # before the reminder
    REMIND = "remind"  # from the reminder to the due time: reminded
    OVERDUE = "overdue"  # from the due time on: listed for the bureau as missing


@dataclass(frozen=True, slots=True)
class BoardEntry:
    site: str
    standing: Standing
    check: DailyCheck | None


@dataclass(frozen=True, slots=True)
class Board:
    day: date
    due_at: datetime
    remind_at: datetime
    phase: Phase
    entries: tuple[BoardEntry, ...]


def _at(day: date, hhmm: time, now: datetime) -> datetime:
    return datetime.combine(day, hhmm, tzinfo=now.tzinfo)


def phase_of(day: date, now: datetime, due: time, remind_at: time) -> Phase:
    if now >= _at(day, due, now):
        return Phase.OVERDUE
    if now >= _at(day, remind_at, now):
        return Phase.REMIND
    return Phase.OPEN


def board(
    sites: Sequence[str],
    checks_of_the_day: Mapping[str, DailyCheck],
    now_in_zone: datetime,
    due: time,
    remind_at: time,
    day: date | None = None,
) -> Board:
    """Each site's standing on `day` (today, in `now_in_zone`'s zone, unless given)."""
    if now_in_zone.tzinfo is None:
        raise ValueError("now_in_zone must carry the gateway's zone")
    day = now_in_zone.date() if day is None else day
    due_at = _at(day, due, now_in_zone)
    entries = []
    for site in sites:
        check = checks_of_the_day.get(site)
        if check is None:
            standing = Standing.MISSING
        elif check.first_at < due_at.timestamp():
            standing = Standing.SUBMITTED
        else:
            standing = Standing.LATE
        entries.append(BoardEntry(site, standing, check))
    phase = phase_of(day, now_in_zone, due, remind_at)
    return Board(day, due_at, _at(day, remind_at, now_in_zone), phase, tuple(entries))


class DueReason(StrEnum):
    REMIND = "remind"  # not in at the reminder time: the site is reminded
    MISSING = "missing"  # not in at the due time: listed for the bureau


@dataclass(frozen=True, slots=True)
class DueAction:
    site: str
    day: date
    reason: DueReason


def due_actions(
    now_in_zone: datetime,
    sites: Sequence[str],
    checks_of_the_day: Mapping[str, DailyCheck],
    due: time,
    remind_at: time,
) -> tuple[DueAction, ...]:
    """What today's clock asks for, for the sites not in: a reminder from `remind_at`, the
    missing list from `due`. The caller sends each (day, site, reason) once."""
    b = board(sites, checks_of_the_day, now_in_zone, due, remind_at)
    reason = {Phase.REMIND: DueReason.REMIND, Phase.OVERDUE: DueReason.MISSING}.get(b.phase)
    if reason is None:
        return ()
    return tuple(
        DueAction(e.site, b.day, reason) for e in b.entries if e.standing is Standing.MISSING
    )


# ----------------------------------------------------------------------------- the roster
class DutyRole(StrEnum):
    ON_DUTY = "on_duty"
    LEADER = "leader"  # the bureau's leader on call (领导带班, seed 001)


class InvalidShift(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RosterEntry:
    scope: str
    day: date
    shift: str
    login: str
    role: DutyRole


@dataclass(frozen=True, slots=True)
class Handover:
    scope: str
    at: float
    from_login: str
    to_login: str
    note: str = ""


def check_shift(scope: str, people: Sequence[tuple[str, DutyRole]], per_shift: int) -> None:
    """InvalidShift unless the shift has at most `per_shift` on duty, each person once, and
    a leader on call only at the bureau, one at most."""
    logins = [login for login, _ in people]
    if len(set(logins)) != len(logins):
        raise InvalidShift("a person is listed twice")
    on_duty = sum(1 for _, role in people if role is DutyRole.ON_DUTY)
    if on_duty > per_shift:
        raise InvalidShift(f"{on_duty} on duty; at most {per_shift} per shift")
    leaders = sum(1 for _, role in people if role is DutyRole.LEADER)
    if leaders and scope != BUREAU_SCOPE:
        raise InvalidShift("a leader on call is the bureau's")
    if leaders > 1:
        raise InvalidShift("one leader on call per shift")
