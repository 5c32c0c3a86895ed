"""`DutyStore` round trips: a report, its resubmission before the due time (first time
kept) and after it (refused), the roster replaced per shift, handovers by time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from gateway.duty.model import CheckAnswer, CheckResult, DailyCheck, DutyRole, Handover
from gateway.duty.store import CheckClosed, DutyStore, DutyUnavailable
from gateway.storage import migrate
from gateway.storage.schemas import DATABASES, DUTY

DAY = date(2026, 11, 24)
DUE = 1_795_503_600.0  # 2026-11-24 15:00 in Shanghai


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DutyStore]:
    s = DutyStore(tmp_path / "duty.sqlite3")
    s.open()
    try:
        yield s
    finally:
        s.close()


def _check(at: float, by: str, result: CheckResult = CheckResult.OK) -> DailyCheck:
    answers = (CheckAnswer("gas", result, "阀门正常"), CheckAnswer("kitchen", CheckResult.OK))
    return DailyCheck("xingfu", DAY, answers, at, by)


def test_a_report_and_its_resubmission(store: DutyStore) -> None:
    first = store.submit(_check(DUE - 3600, "wang"), replace_until=DUE)
    assert first.first_at == DUE - 3600
    again = store.submit(_check(DUE - 1, "li", CheckResult.PROBLEM), replace_until=DUE)
    assert (again.submitted_at, again.first_at) == (DUE - 1, DUE - 3600)
    got = store.checks_of(DAY, {"xingfu", "anning"})
    assert got == {"xingfu": again}
    assert got["xingfu"].answers[0] == CheckAnswer("gas", CheckResult.PROBLEM, "阀门正常")
    with pytest.raises(CheckClosed):
        store.submit(_check(DUE, "wang"), replace_until=DUE)
    assert store.checks_of(DAY, {"xingfu"}) == {"xingfu": again}
    assert store.checks_of(DAY, {"anning"}) == {}
    # A first report after the due time is taken (late), not refused.
    late = DailyCheck("anning", DAY, _check(0, "").answers, DUE + 60, "zhao")
    assert store.submit(late, replace_until=DUE).first_at == DUE + 60


def test_the_roster_by_shift_and_the_handovers(store: DutyStore) -> None:
    on, lead = DutyRole.ON_DUTY, DutyRole.LEADER
    store.set_shift("xingfu", DAY, "day", [("wang", on), ("li", on)], 1.0, "li")
    store.set_shift("bureau", DAY, "day", [("ju", on), ("juzhang", lead)], 1.0, "ju")
    store.set_shift("xingfu", DAY, "day", [("zhang", on)], 2.0, "li")  # replaced
    roster = store.roster_of(DAY, {"xingfu", "bureau"})
    assert [(r.scope, r.login, r.role) for r in roster] == [
        ("bureau", "juzhang", lead), ("bureau", "ju", on), ("xingfu", "zhang", on),
    ]  # fmt: skip
    assert store.roster_of(DAY, {"anning"}) == []
    h = Handover("xingfu", 100.0, "wang", "zhang", "阀门已检查")
    store.hand_over(h)
    assert store.handovers_between({"xingfu"}, 100.0, 101.0) == [h]
    assert store.handovers_between({"xingfu"}, 101.0, 200.0) == []
    assert store.handovers_between({"bureau"}, 0.0, 200.0) == []


def test_a_closed_store_is_unavailable_and_the_file_is_a_known_database(tmp_path: Path) -> None:
    s = DutyStore(tmp_path / "duty.sqlite3")
    with pytest.raises(DutyUnavailable):
        s.checks_of(DAY, {"xingfu"})
    s.open()
    s.close()
    assert DATABASES["duty.sqlite3"] is DUTY
    assert migrate.migrate(tmp_path / "duty.sqlite3", DUTY) is None  # at its version
