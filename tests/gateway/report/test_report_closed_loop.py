"""The daily report's closed loop: incidents with their report clocks (七、事件, JSON
`incidents`, sheet 事件), the self-report due in the period (八、每日自查, `daily_check`,
sheet 每日自查) and the hazard ledger as it stood (九、隐患, `hazards`, sheet 隐患), each
read read-only from a database its own store wrote; the county's line per site; and a
missing or unreadable database said, the report still made."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from pathlib import Path

import openpyxl

from gateway.alarms.store import AlarmStore
from gateway.config.schema import GatewayConfig
from gateway.duty.model import CheckAnswer, CheckResult, DailyCheck
from gateway.duty.store import DutyStore
from gateway.hazards.model import Hazard, HazardLevel, HazardSource, HazardStatus
from gateway.hazards.store import HazardStore
from gateway.incidents.model import ClockState, Incident, PhoneReport, WrittenReport
from gateway.incidents.store import IncidentStore
from gateway.report import render_html, render_xlsx, report_json
from gateway.report.model import CheckStanding
from tests.support.report import END, NUANQUAN, XINGFU, T, by_site, county_report

ITEMS = ("gas", "electrical", "fire_exits", "heating", "kitchen", "residents_visited")


def _data(config: GatewayConfig) -> Path:
    return Path(config.gateway.data_dir)


def _incidents(config: GatewayConfig) -> None:
    st = IncidentStore(_data(config) / "incidents.sqlite3")
    st.open()
    try:

        def inc(id_: str, opened: float, closed: float | None = None, site: str = "xingfu") -> None:
            st.open_incident(Incident(id_, site, None, f"事件{id_}", opened, "wang",
                                      closed_at=closed))  # fmt: skip

        inc("a", T(1))  # phone in 15 min (on time), written in 90 (late)
        st.add_phone_report("a", PhoneReport("局值班室", T(1.25), "wang"))
        st.add_written_report("a", WrittenReport("燃气泄漏", "厨房", "无", "关阀通风", "已处置",
                                                 "", T(2.5), "wang"))  # fmt: skip
        inc("b", T(20))  # nothing by the end; a phone call after it does not count
        st.add_phone_report("b", PhoneReport("局值班室", T(30), "wang"))
        inc("c", T(-30))  # an earlier day's, still open: accounted for
        st.add_phone_report("c", PhoneReport("局值班室", T(-29.9), "li"))
        inc("d", T(-30), closed=T(-20))  # an earlier day's, closed before: not
        inc("e", T(25))  # after the period
        inc("n", T(3), site="nuanquan")
    finally:
        st.close()


def _checks(config: GatewayConfig) -> None:
    st = DutyStore(_data(config) / "duty.sqlite3")
    st.open()
    try:
        answers = tuple(CheckAnswer(i, CheckResult.OK) for i in ITEMS[1:])
        answers = (CheckAnswer("gas", CheckResult.PROBLEM, "软管老化"), *answers)
        # 11-23's report, due at 15:00 = T(0.5): in at 14:45.
        st.submit(DailyCheck("xingfu", date(2026, 11, 23), answers, T(0.25), "wang"), T(0.5))
        # nuanquan has only the next day's, due after the period: its 11-23 one is missing.
        st.submit(DailyCheck("nuanquan", date(2026, 11, 24), answers, T(23), "zhou"), T(24.5))
    finally:
        st.close()


def _hazards(config: GatewayConfig) -> dict[str, int]:
    st = HazardStore(_data(config) / "hazards.sqlite3")
    st.open()
    try:

        def add(site: str, loc: str, level: HazardLevel, found: float, deadline: float) -> int:
            h = Hazard(0, site, loc, "隐患", level, HazardSource.INSPECTION, found, "wang",
                       "李四应", "整改", deadline)  # fmt: skip
            return st.add(h).id

        ids = {
            "old": add("xingfu", "配电室", HazardLevel.GENERAL, T(-48), T(-1)),  # overdue
            "major": add("xingfu", "锅炉房", HazardLevel.MAJOR, T(2), T(100)),
            "later": add("xingfu", "厨房", HazardLevel.GENERAL, T(1), T(100)),
            "nq": add("nuanquan", "伙房", HazardLevel.GENERAL, T(4), T(10)),
        }
        st.transition(ids["major"], HazardStatus.RECTIFYING, False, actor="li", now=T(3))
        st.transition(ids["major"], HazardStatus.AWAITING_VERIFICATION, False, actor="li",
                      now=T(5), note="已更换")  # fmt: skip
        st.transition(ids["later"], HazardStatus.RECTIFYING, False, actor="li", now=T(26))
        st.transition(ids["nq"], HazardStatus.RECTIFYING, False, actor="zhou", now=T(5))
        return ids
    finally:
        st.close()


async def test_the_loop_per_site(store: AlarmStore, config: GatewayConfig) -> None:
    _incidents(config)
    _checks(config)
    ids = _hazards(config)
    report = await county_report(store, config)
    x = by_site(report, "xingfu")

    assert [i.id for i in x.incidents] == ["c", "a", "b"]
    c, a, b = x.incidents
    assert (a.phone.state, a.written.state) == (ClockState.DONE, ClockState.DONE_LATE)
    assert a.phone_to == "局值班室" and a.phone.due_at == T(1.5) and a.written.done_at == T(2.5)
    assert (b.phone.state, b.written.state) == (ClockState.MISSED, ClockState.MISSED)
    assert b.phone_to is None
    assert (c.phone.state, c.written.state) == (ClockState.DONE, ClockState.MISSED)
    assert [i.missed_deadline for i in x.incidents] == [True, True, True]
    assert [i.id for i in by_site(report, "nuanquan").incidents] == ["n"]

    assert x.daily_check is not None and x.daily_check.day == date(2026, 11, 23)
    assert x.daily_check.standing is CheckStanding.SUBMITTED
    assert (x.daily_check.submitted_at, x.daily_check.submitted_by) == (T(0.25), "wang")
    assert x.daily_check.answers[0].label == "燃气设施"
    assert x.daily_check.answers[0].note == "软管老化"
    nq = by_site(report, "nuanquan").daily_check
    assert nq is not None and nq.standing is CheckStanding.MISSING and nq.answers == ()

    ledger = x.hazards
    assert ledger is not None
    assert dict(ledger.by_status) == {
        "open": 2, "rectifying": 0, "awaiting_verification": 1, "closed": 0,
    }  # fmt: skip
    assert dict(ledger.by_level) == {"general": 2, "major": 1}
    assert ledger.overdue == (ids["old"],)
    assert [(c.hazard_id, c.action) for c in ledger.changes] == [
        (ids["later"], "found"), (ids["major"], "found"), (ids["major"], "start"),
        (ids["major"], "rectified"),
    ]  # fmt: skip
    assert by_site(report, "nuanquan").hazards.overdue == (ids["nq"],)  # type: ignore[union-attr]

    doc = report_json(report)
    json.dumps(doc)
    assert doc["closed_loop_unreadable"] == {
        "incidents": None, "daily_checks": None, "hazards": None,
    }  # fmt: skip
    assert doc["closed_loop"] == [
        {"site": "xingfu", "name": XINGFU, "incidents": 3, "incidents_missed_deadline": 3,
         "daily_check": "submitted", "hazards_overdue": 1},
        {"site": "nuanquan", "name": NUANQUAN, "incidents": 1, "incidents_missed_deadline": 1,
         "daily_check": "missing", "hazards_overdue": 1},
    ]  # fmt: skip
    sx = doc["sites"][0]
    assert sx["incidents_unreadable"] is False
    assert sx["incidents"][1]["phone"] == {
        "state": "done", "due_at": "2026-11-23T16:00:00.000+08:00",
        "done_at": "2026-11-23T15:45:00.000+08:00", "seconds_left": None, "to_whom": "局值班室",
    }  # fmt: skip
    assert sx["incidents"][2]["written"]["seconds_left"] == -3 * 3600
    assert sx["daily_check"]["standing"] == "submitted"
    assert sx["daily_check"]["items"][0] == {
        "item": "gas", "label": "燃气设施", "result": "problem", "note": "软管老化",
    }  # fmt: skip
    assert sx["hazards"]["overdue"] == 1 and sx["hazards"]["changes"][3]["to"] == (
        "awaiting_verification"
    )

    html = render_html(report)
    summary = html.split("<h3>闭环管理情况</h3>")[1].split("</section>")[0]
    assert "未提交" in summary and "已提交" in summary
    site = html.split("<h3>七、事件</h3>")[1].split("</section>")[0]
    assert "按时（2026-11-23 15:45报告" in site and "逾期（2026-11-23 17:00报告" in site
    assert "未报（时限 2026-11-24 11:00）" in site
    assert "八、每日自查（2026-11-23）" in site and "软管老化" in site and "有问题" in site
    assert "已提交：2026-11-23 14:45，wang" in site
    assert "待核查" in site and "整改完成" in site and "逾期未整改" in site

    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    rows = list(wb["事件"].iter_rows(values_only=True))
    assert rows[0][:4] == ("机构", "事件", "发生时间", "电话报告")
    assert rows[2] == (XINGFU, "事件a", datetime(2026, 11, 23, 15, 30), "按时",
                       datetime(2026, 11, 23, 15, 45), datetime(2026, 11, 23, 16, 0), "局值班室",
                       "逾期", datetime(2026, 11, 23, 17, 0), datetime(2026, 11, 23, 16, 30),
                       0)  # fmt: skip
    checks = list(wb["每日自查"].iter_rows(values_only=True))
    assert checks[1][:7] == (XINGFU, "2026-11-23", "已提交", datetime(2026, 11, 23, 14, 45),
                             "wang", "燃气设施", "有问题")  # fmt: skip
    assert checks[-1][:3] == (NUANQUAN, "2026-11-23", "未提交")
    hz = list(wb["隐患"].iter_rows(values_only=True))
    assert hz[4][5:7] == ("整改完成", "待核查")
    assert (XINGFU, 2, 0, 1, 0, 2, 1, 1, None) in hz  # the standing under the changes


async def test_an_early_report_sees_what_was_in_by_then(
    store: AlarmStore, config: GatewayConfig
) -> None:
    _incidents(config)
    _checks(config)
    _hazards(config)
    report = await county_report(store, config, now=T(0.4))  # 14:54, before the 15:00 due
    x = by_site(report, "xingfu")
    assert [i.id for i in x.incidents] == ["c"]
    assert x.daily_check is not None and x.daily_check.standing is CheckStanding.SUBMITTED
    nq = by_site(report, "nuanquan").daily_check
    assert nq is not None and nq.standing is CheckStanding.NOT_DUE
    assert x.hazards is not None and x.hazards.changes == ()
    report = await county_report(store, config, now=T(1.3))
    a = by_site(report, "xingfu").incidents[1]
    assert (a.phone.state, a.written.state) == (ClockState.DONE, ClockState.RUNNING)


async def test_missing_and_unreadable_databases_are_said(
    store: AlarmStore, config: GatewayConfig
) -> None:
    _hazards(config)  # readable; no duty database at all; a broken incidents one
    (_data(config) / "incidents.sqlite3").write_bytes(b"not a database" * 100)
    report = await county_report(store, config)
    assert report.period.end == END and by_site(report, "xingfu").raised == 6  # still made
    assert report.incidents_unreadable is not None and report.duty_unreadable is not None
    assert report.hazards_unreadable is None
    assert not (_data(config) / "duty.sqlite3").exists()  # not created by reading

    doc = report_json(report)
    s = doc["sites"][0]
    assert (s["incidents_unreadable"], s["daily_check_unreadable"], s["hazards_unreadable"]) == (
        True, True, False,
    )  # fmt: skip
    assert s["daily_check"] is None and s["hazards"]["overdue"] == 1
    assert doc["closed_loop"][0]["daily_check"] is None
    assert "no database" in doc["closed_loop_unreadable"]["daily_checks"]

    html = render_html(report)
    assert "事件数据库无法读取" in html and "值班与自查数据库无法读取" in html
    assert "无法读取" in html.split("<h3>闭环管理情况</h3>")[1].split("</section>")[0]
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    assert wb["事件"].cell(2, 1).value == "事件数据库无法读取"
    assert wb["每日自查"].cell(2, 1).value == "值班与自查数据库无法读取"
