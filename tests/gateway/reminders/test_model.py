"""What the closed loop's clocks ask for, at each boundary, with the time given: the 14:30
reminder and the 15:00 missing list, an incident's 30- and 60-minute reports, a hazard's
coming and passed deadline. Keys name what and when, so that each goes out once."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from gateway.duty.model import CheckAnswer, CheckResult, DailyCheck
from gateway.hazards.model import Hazard, HazardLevel, HazardSource, HazardStatus
from gateway.incidents.model import Deadlines, Incident, PhoneReport, WrittenReport
from gateway.reminders import model
from gateway.reminders.model import Kind

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 24)
DUE, REMIND = time(15, 0), time(14, 30)
T15 = 1_795_503_600.0  # 2026-11-24 15:00 in Shanghai
SITES = ["xingfu", "anle", "kangning"]


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 24, hh, mm, ss, tzinfo=SHANGHAI)


def check(site: str, ts: float) -> DailyCheck:
    return DailyCheck(site, DAY, (CheckAnswer("gas", CheckResult.OK),), ts, "wang")


def test_before_the_reminder_time_nothing_is_due() -> None:
    assert model.daily_checks(at(14, 29, 59), SITES, {}, DUE, REMIND) == []


def test_at_1430_each_site_not_in_is_reminded_and_at_1500_the_bureau_gets_one_list() -> None:
    checks = {"anle": check("anle", T15 - 3600)}
    reminded = model.daily_checks(at(14, 30), SITES, checks, DUE, REMIND)
    assert [(r.kind, r.site, r.key) for r in reminded] == [
        (Kind.CHECK_REMIND, "xingfu", "check/2026-11-24/xingfu/remind"),
        (Kind.CHECK_REMIND, "kangning", "check/2026-11-24/kangning/remind"),
    ]
    assert all(r.deadline == T15 and r.to == ("on_duty",) for r in reminded)
    # kangning reports at 14:50, late for nothing: only xingfu is missing at 15:00.
    checks["kangning"] = check("kangning", T15 - 600)
    assert (
        model.daily_checks(at(14, 59, 59), SITES, checks, DUE, REMIND)[0].kind is Kind.CHECK_REMIND
    )
    [missing] = model.daily_checks(at(15, 0), SITES, checks, DUE, REMIND)
    assert (missing.kind, missing.site, missing.sites) == (Kind.CHECK_MISSING, None, ("xingfu",))
    assert missing.key == "check/2026-11-24/missing" and missing.to == ("bureau_on_duty",)
    everyone_in = {s: check(s, T15 - 60) for s in SITES}
    assert model.daily_checks(at(15, 0), SITES, everyone_in, DUE, REMIND) == []


DEADLINES = Deadlines.from_minutes(30, 60)
T0 = T15 - 7200


def incident(**kw: object) -> Incident:
    return Incident("inc-1", "xingfu", "a-gas", "一楼厨房燃气泄漏", T0, "wang", **kw)  # type: ignore[arg-type]


def test_a_report_due_is_alerted_only_once_its_deadline_has_passed() -> None:
    assert model.incidents([incident()], T0 + 1800, DEADLINES) == [], "the deadline is in time"
    [phone] = model.incidents([incident()], T0 + 1800.001, DEADLINES)
    assert (phone.kind, phone.key, phone.deadline) == (
        Kind.PHONE_MISSED,
        "incident/inc-1/phone",
        T0 + 1800,
    )
    assert phone.to == ("bureau_on_duty", "on_duty")
    late_call = incident(phone_report=PhoneReport("局值班", T0 + 2400, "wang"))
    [written] = model.incidents([late_call], T0 + 3601, DEADLINES)
    assert (written.kind, written.key) == (Kind.WRITTEN_MISSED, "incident/inc-1/written")
    both = WrittenReport("泄漏", "厨房", "无", "关阀通风", "已恢复", "检修", T0 + 3000, "wang")
    assert model.incidents([incident(phone_report=late_call.phone_report, written_report=both)],
                           T0 + 86400, DEADLINES) == []  # fmt: skip
    assert model.incidents([incident(closed_at=T0 + 600)], T0 + 86400, DEADLINES) == []


def hazard(status: HazardStatus = HazardStatus.RECTIFYING, deadline: float | None = T15) -> Hazard:
    return Hazard(7, "xingfu", "锅炉房", "烟道破损", HazardLevel.MAJOR, HazardSource.INSPECTION,
                  T0, "wang", "wang", "更换烟道", deadline, status)  # fmt: skip


def test_a_hazard_is_reminded_before_its_deadline_and_overdue_after() -> None:
    day = 86400.0
    assert model.hazards([hazard()], T15 - day - 1, day) == []
    [due] = model.hazards([hazard()], T15 - day, day)
    assert (due.kind, due.key, due.person) == (Kind.HAZARD_DUE, f"hazard/7/{int(T15)}/due", "wang")
    [over] = model.hazards([hazard()], T15, day)
    assert (over.kind, over.key) == (Kind.HAZARD_OVERDUE, f"hazard/7/{int(T15)}/overdue")
    assert over.to == ("safety_manager",)
    moved = model.hazards([hazard(deadline=T15 + 2 * day)], T15 + day, day)
    assert [r.key for r in moved] == [f"hazard/7/{int(T15 + 2 * day)}/due"], "reminded again"
    for quiet in (HazardStatus.AWAITING_VERIFICATION, HazardStatus.CLOSED):
        assert model.hazards([hazard(quiet)], T15 + day, day) == []
    assert model.hazards([hazard(deadline=None)], T15 + day, day) == []
