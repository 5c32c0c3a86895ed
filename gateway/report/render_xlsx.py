"""The report as an XLSX statistics workbook (openpyxl)."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from gateway.audit import action_label, result_label, role_label
from gateway.notify.render import alarm_label, severity_label
from gateway.report.model import (
    CHECK_RESULT_LABELS,
    CHECK_STANDING_LABELS,
    CLOCK_LABELS,
    COMMAND_LABELS,
    DEVICE_STATUS_LABELS,
    DEVICE_TYPE_LABELS,
    DISPOSITION_KEYS,
    DISPOSITION_LABELS,
    NO_RESULT,
    NOT_ACKED,
    RESULT_LABELS,
    SEVERITY_KEYS,
    SITE_KIND_LABELS,
    TYPE_KEYS,
    Counts,
    DailyReport,
    SiteReport,
    actor_label,
    label_of,
)
from gateway.report.render_html import (
    hazard_action_label,
    hazard_level_label,
    hazard_status_label,
    open_state_label,
    time_text,
)
from gateway.report.render_json import rate_rounded

_BOLD = Font(bold=True)
_HEADER_FILL = PatternFill("solid", start_color="E8E8E8")
_DATETIME = "yyyy-mm-dd hh:mm:ss"
_PERCENT = "0.0%"


def _local(ts: float | None, tz: ZoneInfo) -> datetime | None:
    """Excel has no time zones: cells hold the gateway's local time (the sheet says which)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz).replace(tzinfo=None, microsecond=0)


def _width(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 19
    if isinstance(value, float):
        return 8
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value))


def write_table(
    ws: Worksheet,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    formats: Mapping[int, str] | None = None,
) -> None:
    """Bold header row (frozen), data rows with number formats, widths from the content.
    Text is always text: a name or note beginning with "=" (typed by anyone, or a login
    attempt from the network) would otherwise be a formula that Excel runs."""
    ws.append(list(headers))
    for cell in ws[1]:
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="center")
    widths = [_width(h) for h in headers]
    for row in rows:
        ws.append(list(row))
        for cell in ws[ws.max_row]:
            if cell.data_type == "f":
                cell.data_type = "s"
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _width(value))
    fmt = dict(formats or {})
    for r in ws.iter_rows(min_row=2):
        for i, cell in enumerate(r):
            if isinstance(cell.value, datetime):
                cell.number_format = _DATETIME
            elif i in fmt:
                cell.number_format = fmt[i]
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = min(max(w + 2, 6), 60)
    ws.freeze_panes = "A2"


def render_xlsx(report: DailyReport) -> bytes:
    """The report as a workbook: 汇总, 未关闭报警, 设备在线率, 阀门与脱扣操作, 误报率,
    人员操作, 事件, 每日自查, 隐患."""
    tz = ZoneInfo(report.timezone)
    wb = Workbook()
    # Fixed document times: the same report gives the same file.
    wb.properties.created = wb.properties.modified = _local(report.generated_at, tz)
    wb.properties.title = report.title
    summary = wb.active
    assert summary is not None
    summary.title = "汇总"
    _summary_sheet(summary, report)
    write_table(
        wb.create_sheet("未关闭报警"),
        [
            "机构",
            "位置",
            "设备",
            "报警类型",
            "级别",
            "状态",
            "报警时间",
            "持续(小时)",
            "确认人",
            "确认时间",
            "报警编号",
        ],
        [
            [
                s.name,
                a.location,
                a.device,
                alarm_label(a.type),
                severity_label(a.severity),
                open_state_label(a),
                _local(a.raised_at, tz),
                a.age_h,
                a.acked_by or NOT_ACKED,
                _local(a.acked_at, tz),
                a.id,
            ]
            for s in report.sites
            for a in s.open_alarms
        ],
        {7: "0.0"},
    )
    write_table(
        wb.create_sheet("设备在线率"),
        ["机构", "位置", "设备", "设备类型", "在线率", "离线时长(小时)", "当前状态"],
        [
            [
                s.name,
                d.location,
                d.device,
                label_of(DEVICE_TYPE_LABELS, d.type),
                d.online_rate,
                round(d.offline_s / 3600, 2),
                label_of(DEVICE_STATUS_LABELS, d.status_now),
            ]
            for s in report.sites
            for d in s.availability
        ],
        {4: _PERCENT, 5: "0.00"},
    )
    write_table(
        wb.create_sheet("阀门与脱扣操作"),
        ["时间", "机构", "位置", "设备", "操作", "发起人", "结果", "结果时间", "说明", "关联报警"],
        [
            [
                _local(a.sent_at, tz),
                s.name,
                a.location,
                a.device,
                label_of(COMMAND_LABELS, a.cmd),
                actor_label(a.requested_by),
                RESULT_LABELS.get(a.result, a.result) if a.result else NO_RESULT,
                _local(a.result_at, tz),
                a.detail,
                a.alarm_id,
            ]
            for s in report.sites
            for a in s.actions
        ],
    )
    write_table(
        wb.create_sheet("误报率"),
        ["机构", "位置", "设备", "关闭报警数", "误报数", "误报率"],
        [
            [s.name, r.location, r.device, r.closed, r.false_alarms, r.rate]
            for s in report.sites
            for r in s.false_alarm_rates
        ],
        {5: _PERCENT},
    )
    write_table(
        wb.create_sheet("人员操作"),
        ["时间", "机构", "人员", "姓名", "角色", "操作", "对象", "结果", "说明"],
        [
            [
                _local(a.at, tz),
                s.name,
                a.actor,
                a.actor_name,
                role_label(a.role),
                action_label(a.action),
                a.target,
                result_label(a.result),
                a.detail,
            ]
            for s in report.sites
            for a in s.human_actions
        ],
    )
    if report.audit_unreadable is not None:
        wb["人员操作"].append(["审计日志无法读取", report.audit_unreadable])
    _loop_sheets(wb, report, tz)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


SUMMARY_HEADERS: tuple[str, ...] = (
    "机构", "类型", "设备数", "在线率", "当前离线", "报警数",
    *(severity_label(k) for k in SEVERITY_KEYS),
    *(alarm_label(k) for k in TYPE_KEYS),
    *(DISPOSITION_LABELS[k] for k in DISPOSITION_KEYS),
    "未关闭报警", "其中未确认", "阀门与脱扣操作", "关闭报警数", "误报数", "误报率",
)  # fmt: skip


def _summary_sheet(ws: Worksheet, report: DailyReport) -> None:
    tz = ZoneInfo(report.timezone)
    rows: list[list[object]] = [_summary_row(s) for s in report.sites]
    if report.scope == "county":
        t = report.totals
        rows.append(
            [
                f"合计（{t.sites}家）",
                "",
                t.devices,
                t.online_rate,
                t.offline_now,
                t.raised,
                *_ordered(t.by_severity, SEVERITY_KEYS),
                *_ordered(t.by_type, TYPE_KEYS),
                *_ordered(t.by_disposition, DISPOSITION_KEYS),
                t.open_alarms,
                t.unacked_open,
                t.actions,
                t.closed,
                t.false_alarms,
                rate_rounded(t.false_alarm_rate),
            ]
        )
    write_table(ws, SUMMARY_HEADERS, rows, {3: _PERCENT, len(SUMMARY_HEADERS) - 1: _PERCENT})
    if report.scope == "county":
        for cell in ws[ws.max_row]:
            cell.font = _BOLD
    # Below the table, what it covers: read by people, ignored by anything parsing row 1.
    ws.append([])
    ws.append(
        [
            "统计时段",
            f"{time_text(report.period.start, tz)} 至 {time_text(report.period.end, tz)}",
        ]
    )
    ws.append(["时区", report.timezone])
    ws.append(["生成时间", _local(report.generated_at, tz)])
    ws.cell(ws.max_row, 2).number_format = _DATETIME


def _ordered(counts: Counts, keys: Sequence[str]) -> list[int]:
    found = dict(counts)
    return [found.get(k, 0) for k in keys]


def _summary_row(s: SiteReport) -> list[object]:
    return [
        s.name,
        label_of(SITE_KIND_LABELS, s.kind),
        s.devices,
        s.online_rate,
        len(s.offline_now),
        s.raised,
        *_ordered(s.by_severity, SEVERITY_KEYS),
        *_ordered(s.by_type, TYPE_KEYS),
        *_ordered(s.by_disposition, DISPOSITION_KEYS),
        len(s.open_alarms),
        s.unacked_open,
        len(s.actions),
        s.closed,
        s.false_alarms,
        rate_rounded(s.false_alarm_rate),
    ]


def _loop_sheets(wb: Workbook, report: DailyReport, tz: ZoneInfo) -> None:
    """事件, 每日自查 and 隐患: one row per incident, per answered item (or one per site
    not in), per site's ledger; a database that could not be read says so under its
    table, as the audit trail's sheet does."""
    write_table(
        wb.create_sheet("事件"),
        ["机构", "事件", "发生时间", "电话报告", "电话报告时间", "电话时限", "报告对象",
         "书面报告", "书面报告时间", "书面时限", "续报"],
        [
            [
                s.name, i.title, _local(i.opened_at, tz),
                CLOCK_LABELS[i.phone.state.value], _local(i.phone.done_at, tz),
                _local(i.phone.due_at, tz), i.phone_to,
                CLOCK_LABELS[i.written.state.value], _local(i.written.done_at, tz),
                _local(i.written.due_at, tz), i.follow_ups,
            ]
            for s in report.sites
            for i in s.incidents
        ],
    )  # fmt: skip
    if report.incidents_unreadable is not None:
        wb["事件"].append(["事件数据库无法读取", report.incidents_unreadable])
    rows: list[list[object]] = []
    for s in report.sites:
        c = s.daily_check
        if c is None:
            continue
        head = [s.name, c.day.isoformat(), CHECK_STANDING_LABELS[c.standing.value],
                _local(c.submitted_at, tz), c.submitted_by]  # fmt: skip
        rows += [
            [*head, a.label, label_of(CHECK_RESULT_LABELS, a.result), a.note] for a in c.answers
        ] or [[*head, None, None, None]]
    write_table(
        wb.create_sheet("每日自查"),
        ["机构", "日期", "状态", "提交时间", "提交人", "检查项目", "结果", "说明"],
        rows,
    )
    if report.duty_unreadable is not None:
        wb["每日自查"].append(["值班与自查数据库无法读取", report.duty_unreadable])
    write_table(
        wb.create_sheet("隐患"),
        ["机构", "时间", "隐患", "部位", "等级", "变化", "状态", "人员", "说明"],
        [
            [
                s.name, _local(c.at, tz), c.hazard_id, c.location, hazard_level_label(c.level),
                hazard_action_label(c.action), hazard_status_label(c.to_status), c.actor, c.note,
            ]
            for s in report.sites
            if s.hazards is not None
            for c in s.hazards.changes
        ],
    )  # fmt: skip
    ws = wb["隐患"]
    if report.hazards_unreadable is not None:
        ws.append(["隐患台账无法读取", report.hazards_unreadable])
        return
    # The ledger's standing per site under the changes: counts at the report time.
    ws.append([])
    statuses = [k for k, _ in report.sites[0].hazards.by_status] if report.sites[0].hazards else []
    ws.append(["机构", *(hazard_status_label(k) for k in statuses), "一般", "重大", "逾期"])
    for s in report.sites:
        if s.hazards is not None:
            levels = dict(s.hazards.by_level)
            ws.append([s.name, *(n for _, n in s.hazards.by_status), levels.get("general", 0),
                       levels.get("major", 0), len(s.hazards.overdue)])  # fmt: skip
