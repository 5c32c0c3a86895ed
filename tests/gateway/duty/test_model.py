"""The pure decisions of the self-report and the roster, with a fake clock in the gateway's
zone (Asia/Shanghai) at each boundary of 14:30 and 15:00."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from gateway.duty.model import (
    CheckAnswer,
    CheckResult,
    DailyCheck,
    DueAction,
    DueReason,
    DutyRole,
    InvalidCheck,
    InvalidShift,
    Phase,
    Standing,
    board,
    check_shift,
    checked,
    due_actions,
)

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 24)
DUE, REMIND = time(15, 0), time(14, 30)
ITEMS = ("gas", "electrical", "kitchen")
SITES = ("xingfu", "anning", "heping")


def at(h: int, m: int, s: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, h, m, s, tzinfo=SH)


def check(site: str, submitted: datetime, first: datetime | None = None) -> DailyCheck:
    answers = tuple(CheckAnswer(i, CheckResult.OK) for i in ITEMS)
    return DailyCheck(
        site, DAY, answers, submitted.timestamp(), "wang",
        first.timestamp() if first else None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("now", "phase", "reason"),
    [
        (at(14, 29, 59), Phase.OPEN, None),
        (at(14, 30), Phase.REMIND, DueReason.REMIND),
        (at(14, 59), Phase.REMIND, DueReason.REMIND),
        (at(14, 59, 59), Phase.REMIND, DueReason.REMIND),
        (at(15, 0), Phase.OVERDUE, DueReason.MISSING),
        (at(15, 1), Phase.OVERDUE, DueReason.MISSING),
    ],
)
def test_due_actions_at_the_boundaries(
    now: datetime, phase: Phase, reason: DueReason | None
) -> None:
    checks = {"xingfu": check("xingfu", at(9, 0))}
    assert board(SITES, checks, now, DUE, REMIND).phase is phase
    expected = () if reason is None else tuple(DueAction(s, DAY, reason) for s in SITES[1:])
    assert due_actions(now, SITES, checks, DUE, REMIND) == expected


def test_the_zone_decides_the_day_and_the_hour() -> None:
    # 07:00 UTC is 15:00 in Shanghai: overdue there, whatever the host's zone is.
    utc_now = datetime(2026, 11, 24, 7, 0, tzinfo=ZoneInfo("UTC"))
    assert board(SITES, {}, utc_now.astimezone(SH), DUE, REMIND).phase is Phase.OVERDUE
    # 16:30 UTC on the 24th is already the 25th in Shanghai: a new day, open again.
    late = datetime(2026, 11, 24, 16, 30, tzinfo=ZoneInfo("UTC")).astimezone(SH)
    b = board(SITES, {}, late, DUE, REMIND)
    assert (b.day, b.phase) == (date(2026, 11, 25), Phase.OPEN)
    with pytest.raises(ValueError, match="zone"):
        board(SITES, {}, datetime(2026, 11, 24, 15, 0), DUE, REMIND)


def test_standing_submitted_late_missing() -> None:
    checks = {
        "xingfu": check("xingfu", at(14, 59, 59)),
        "anning": check("anning", at(15, 0)),  # at the due time is not before it
    }
    b = board(SITES, checks, at(16, 0), DUE, REMIND)
    assert [(e.site, e.standing) for e in b.entries] == [
        ("xingfu", Standing.SUBMITTED), ("anning", Standing.LATE), ("heping", Standing.MISSING),
    ]  # fmt: skip
    # A correction after the due time of a report first in before it stays on time.
    fixed = {"xingfu": check("xingfu", at(15, 30), first=at(10, 0))}
    assert board(SITES, fixed, at(16, 0), DUE, REMIND).entries[0].standing is Standing.SUBMITTED


def test_a_past_day_is_overdue_and_a_future_one_open() -> None:
    assert board(SITES, {}, at(9, 0), DUE, REMIND, day=date(2026, 11, 23)).phase is Phase.OVERDUE
    assert board(SITES, {}, at(16, 0), DUE, REMIND, day=date(2026, 11, 25)).phase is Phase.OPEN


def test_the_checklist_is_answered_in_full_once_per_item() -> None:
    ok = [CheckAnswer(i, CheckResult.OK) for i in reversed(ITEMS)]
    assert [a.item for a in checked(ok, ITEMS)] == list(ITEMS)  # the checklist's order
    with pytest.raises(InvalidCheck, match="missing items: kitchen"):
        checked(ok[1:], ITEMS)  # kitchen is ok[0]
    with pytest.raises(InvalidCheck, match="unknown item 'boiler'"):
        checked([*ok, CheckAnswer("boiler", CheckResult.PROBLEM)], ITEMS)
    with pytest.raises(InvalidCheck, match="'gas' answered twice"):
        checked([*ok, CheckAnswer("gas", CheckResult.PROBLEM)], ITEMS)


def test_a_shift_has_its_limits() -> None:
    on = DutyRole.ON_DUTY
    check_shift("xingfu", [("wang", on), ("li", on)], per_shift=2)
    check_shift("bureau", [("ju", on), ("juzhang", DutyRole.LEADER)], per_shift=1)
    with pytest.raises(InvalidShift, match="at most 2"):
        check_shift("xingfu", [("wang", on), ("li", on), ("zhang", on)], per_shift=2)
    with pytest.raises(InvalidShift, match="twice"):
        check_shift("xingfu", [("wang", on), ("wang", on)], per_shift=2)
    with pytest.raises(InvalidShift, match="bureau's"):
        check_shift("xingfu", [("wang", DutyRole.LEADER)], per_shift=2)
    with pytest.raises(InvalidShift, match="one leader"):
        check_shift("bureau", [("a", DutyRole.LEADER), ("b", DutyRole.LEADER)], per_shift=2)
