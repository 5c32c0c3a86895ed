"""The daily report's 人员操作 section: what people did at each site in the period, read
read-only from the audit trail (HTML section, JSON `human_actions`, XLSX sheet 人员操作);
what the system did, what lies outside the period and rows about no site are left out, and
an unreadable log is said, not fatal."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import openpyxl

from gateway.alarms.store import AlarmStore
from gateway.audit import AuditEntry, AuditRecord, append_sync
from gateway.config.schema import GatewayConfig
from gateway.report import render_html, render_xlsx, report_json
from gateway.report.figures import human_actions_in_period
from gateway.report.model import Period
from tests.support.report import DAY, END, NUANQUAN, START, XINGFU, T, by_site, county_report


def _audit(config: GatewayConfig) -> None:
    path = Path(config.gateway.data_dir) / "audit.sqlite3"
    rows = [
        AuditEntry(T(-0.5), "wang", "王值班", "duty", "10.0.0.7", "alarm.ack", "xingfu", "x-0"),
        AuditEntry(T(1), "wang", "王值班", "duty", "10.0.0.7", "alarm.ack", "xingfu", "x-1"),
        AuditEntry(T(2), "system", "系统", "system", "signal", "config.reload"),
        AuditEntry(T(3), "system", "系统", "system", "rules", "command.close_valve", "xingfu"),
        AuditEntry(T(4), "li", "李四应", "safety_manager", "10.0.0.8", "command.open_valve",
                   "xingfu", "valve-kitchen", "refused", {"reason": "gas alarm open"}),
        AuditEntry(T(5), "zhou", "周所长", "duty", "10.0.0.9", "alarm.close", "nuanquan", "n-1"),
        AuditEntry(T(6), "admin", "管理员", "admin", "10.0.0.1", "user.add", None, "zhou"),
        AuditEntry(T(25), "wang", "王值班", "duty", "10.0.0.7", "alarm.ack", "xingfu", "x-9"),
    ]  # fmt: skip
    for row in rows:
        append_sync(path, row)


async def test_people_s_actions_per_site(store: AlarmStore, config: GatewayConfig) -> None:
    _audit(config)
    report = await county_report(store, config)
    xingfu = by_site(report, "xingfu")
    assert [(a.actor, a.action, a.target, a.result) for a in xingfu.human_actions] == [
        ("wang", "alarm.ack", "x-1", "ok"),
        ("li", "command.open_valve", "valve-kitchen", "refused"),
    ]
    assert xingfu.human_actions[1].detail == "reason: gas alarm open"
    assert [a.target for a in by_site(report, "nuanquan").human_actions] == ["n-1"]
    # A report made before the period ends sees what had happened by then.
    early = await county_report(store, config, now=T(3))
    assert [a.target for a in by_site(early, "xingfu").human_actions] == ["x-1"]

    doc = report_json(report)
    assert doc["audit_unreadable"] is None
    sites = {s["site"]: s for s in doc["sites"]}
    assert sites["xingfu"]["human_actions"][0] == {
        "seq": 2,
        "at": "2026-11-23T15:30:00.000+08:00",
        "actor": "wang",
        "actor_name": "王值班",
        "role": "duty",
        "action": "alarm.ack",
        "target": "x-1",
        "result": "ok",
        "detail": None,
    }
    json.dumps(doc)

    html = render_html(report)
    section = html.split("<h3>六、人员操作</h3>")[1].split("</section>")[0]
    assert "确认报警" in section and "王值班（wang）" in section and "x-1" in section
    assert "开启燃气阀" in section and "拒绝" in section and "安全管理员" in section
    assert "x-0" not in html and "x-9" not in html and "user.add" not in html

    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    rows = list(wb["人员操作"].iter_rows(values_only=True))
    assert rows[0] == ("时间", "机构", "人员", "姓名", "角色", "操作", "对象", "结果", "说明")
    assert rows[1:] == [
        (datetime(2026, 11, 23, 15, 30), XINGFU, "wang", "王值班", "值班人员", "确认报警",
         "x-1", "成功", None),
        (datetime(2026, 11, 23, 18, 30), XINGFU, "li", "李四应", "安全管理员", "开启燃气阀",
         "valve-kitchen", "拒绝", "reason: gas alarm open"),
        (datetime(2026, 11, 23, 19, 30), NUANQUAN, "zhou", "周所长", "值班人员", "关闭报警",
         "n-1", "成功", None),
    ]  # fmt: skip


async def test_no_log_no_actions(store: AlarmStore, config: GatewayConfig) -> None:
    report = await county_report(store, config)
    assert all(s.human_actions == () for s in report.sites)
    assert report.audit_unreadable is None
    assert "本时段无人员操作记录。" in render_html(report)
    assert not (Path(config.gateway.data_dir) / "audit.sqlite3").exists()  # not created


async def test_an_unreadable_log_is_said(store: AlarmStore, config: GatewayConfig) -> None:
    (Path(config.gateway.data_dir) / "audit.sqlite3").write_bytes(b"not a database" * 100)
    report = await county_report(store, config)
    assert report.audit_unreadable is not None
    assert report.period.end == END
    assert "审计日志无法读取" in render_html(report)
    assert report_json(report)["audit_unreadable"] == report.audit_unreadable
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    assert wb["人员操作"].cell(2, 1).value == "审计日志无法读取"


def test_the_figures_leave_out_the_system_and_other_sites() -> None:
    period = Period(DAY, START, END, END)

    def rec(seq: int, actor: str, site: str | None, at: float) -> AuditRecord:
        return AuditRecord(seq, at, actor, actor, "duty", "x", "alarm.ack", site, None, "ok",
                           None, "0" * 64, "1" * 64)  # fmt: skip

    rows = [
        rec(1, "system", "xingfu", T(1)),
        rec(2, "wang", "nuanquan", T(1)),
        rec(3, "wang", None, T(1)),
        rec(5, "li", "xingfu", T(2)),
        rec(4, "wang", "xingfu", T(2)),  # same time: by seq
        rec(6, "wang", "xingfu", END),  # the end belongs to the next period
    ]
    assert [a.seq for a in human_actions_in_period(rows, "xingfu", period)] == [4, 5]
