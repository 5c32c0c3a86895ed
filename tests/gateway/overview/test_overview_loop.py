"""The overview's closed loop as pure figures: which incidents count as open and late, which
hazards as overdue, the self-report's standing before and after its due time, and an owner
that could not be read (null, never zero). The API is in tests/gateway/http/test_overview_api.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from gateway.config.clockface import Clockface
from gateway.hazards.model import HazardStatus
from gateway.incidents.model import Deadlines, Incident, PhoneReport
from gateway.overview.loop import LoopReads, loop_figures, site_loop_json, totals_loop_json
from tests.support.overview import daily_check, hazard

ZONE = ZoneInfo("Asia/Shanghai")
CLOCK = Clockface("Asia/Shanghai")
T = datetime(2026, 11, 19, 15, 0, tzinfo=ZONE).timestamp()  # the due time
MIN = 60.0
SITES = ["a", "b"]
DEADLINES = Deadlines.from_minutes(30, 60)


def figures(reads: LoopReads, now: float = T):  # type: ignore[no-untyped-def]
    zone_now = datetime.fromtimestamp(now, ZONE)
    return loop_figures(reads, SITES, now, DEADLINES, zone_now, time(15), time(14, 30))


def test_open_incidents_and_their_late_reports() -> None:
    late_call = Incident("i1", "a", None, "x", T - 40 * MIN, "p")
    called_late = replace(late_call, id="i2", phone_report=PhoneReport("局", T - 5 * MIN, "p"))
    in_time = Incident("i3", "a", None, "x", T - 10 * MIN, "p")
    reads = LoopReads(
        incidents=[
            late_call,
            called_late,
            in_time,
            replace(late_call, id="closed", closed_at=T - MIN),  # closed: not open
            replace(in_time, id="later", opened_at=T + 1),  # after now: not yet
            replace(in_time, id="elsewhere", site="zzz"),  # not one of the sites
        ],
        hazards=[],
        checks={},
    )
    a = figures(reads).sites["a"]
    assert a.incidents is not None
    assert [i.incident.id for i in a.incidents] == ["i1", "i2", "i3"]
    assert (a.open_incidents, a.incidents_report_overdue, a.incidents_deadline_missed) == (3, 1, 2)
    assert figures(reads).sites["b"].open_incidents == 0


def test_overdue_hazards_are_those_not_yet_rectified_past_their_deadline() -> None:
    due = hazard("a", T - 60 * MIN, T - MIN)
    reads = LoopReads(
        incidents=[],
        hazards=[
            due,
            replace(due, id=2, status=HazardStatus.RECTIFYING, level=due.level.MAJOR),
            replace(due, id=3, deadline=T),  # the deadline itself is in time
            replace(due, id=4, deadline=None),
            replace(due, id=5, status=HazardStatus.AWAITING_VERIFICATION),  # the bureau's wait
            replace(due, id=6, found_at=T + 1),  # found after now
        ],
        checks={},
    )
    a = figures(reads).sites["a"]
    assert (a.overdue_hazards, a.overdue_major, a.hazards_to_rectify) == ((0, 2), 1, 5)


def test_self_report_missing_only_counts_after_the_due_time() -> None:
    items = ["gas"]
    reads = LoopReads([], [], {"a": daily_check("a", date(2026, 11, 19), T - MIN, items)})
    before = figures(reads, T - 1)
    at_due = figures(reads, T)
    assert totals_loop_json(before, SITES, CLOCK)["daily_checks"]["missing_after_due"] == 0
    t = totals_loop_json(at_due, SITES, CLOCK)["daily_checks"]
    assert (t["phase"], t["submitted"], t["missing"], t["missing_after_due"]) == (
        "overdue", 1, 1, 1,
    )  # fmt: skip
    assert site_loop_json(at_due, "b", CLOCK)["daily_check"]["missing_after_due"] is True
    assert site_loop_json(at_due, "a", CLOCK)["daily_check"]["standing"] == "submitted"


def test_an_unreadable_owner_is_null_not_zero() -> None:
    reads = LoopReads(incidents=None, hazards=[], checks=None, unreadable={"incidents": "gone"})
    f = figures(reads)
    t = totals_loop_json(f, SITES, CLOCK)
    assert (t["open_incidents"], t["incidents_report_overdue"], t["overdue_hazards"]) == (
        None, None, 0,
    )  # fmt: skip
    assert t["daily_checks"]["missing_after_due"] is None
    assert t["unreadable"] == {"incidents": "gone"}
    row = site_loop_json(f, "a", CLOCK)
    assert (row["open_incidents"], row["daily_check"]["standing"]) == (None, None)
