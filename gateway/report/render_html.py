"""The report as a Chinese HTML page (the mail's body and the API's `format=html`)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.alarms.book import AlarmState
from gateway.audit import action_label, result_label, role_label
from gateway.hazards.model import LEVEL_LABELS, STATUS_LABELS, HazardLevel, HazardStatus
from gateway.incidents.model import ReportClock
from gateway.notify.render import STATE_LABELS, alarm_label, severity_label
from gateway.report.model import (
    CHECK_RESULT_LABELS,
    CHECK_STANDING_LABELS,
    CLOCK_LABELS,
    COMMAND_LABELS,
    DEVICE_STATUS_LABELS,
    DEVICE_TYPE_LABELS,
    DISPOSITION_LABELS,
    NO_RESULT,
    NOT_ACKED,
    RESULT_LABELS,
    SEVERITY_KEYS,
    SITE_KIND_LABELS,
    TYPE_KEYS,
    ActionRecord,
    Counts,
    DailyReport,
    OpenAlarm,
    SiteReport,
    actor_label,
    label_of,
)
from gateway.report.render_json import pct_text

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
  "Microsoft YaHei", "PingFang SC", "SimSun", sans-serif; color: #111; font-size: 10.5pt;
  line-height: 1.45; max-width: 1080px; margin: 0 auto; padding: 16px; }
h1 { font-size: 18pt; text-align: center; margin: 0 0 4px; }
.meta { text-align: center; color: #333; margin: 0 0 14px; }
h2 { font-size: 14pt; border-bottom: 2px solid #222; padding-bottom: 2px; margin: 22px 0 8px; }
h3 { font-size: 11.5pt; margin: 14px 0 6px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; }
th, td { border: 1px solid #777; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #e8e8e8; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.warn { color: #a00000; font-weight: 600; }
.none { color: #555; }
.note { color: #444; font-size: 9pt; }
.counts { display: flex; flex-wrap: wrap; gap: 0 16px; align-items: flex-start; }
.counts table { width: auto; min-width: 190px; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
section.site + section.site, section.summary + section.site { break-before: page; }
@media print {
  body { padding: 0; max-width: none; }
  th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int]) -> str:
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _none(text: str) -> str:
    return f'<p class="none">{_e(text)}</p>'


def time_text(ts: float | None, tz: ZoneInfo) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")


def render_html(report: DailyReport) -> str:
    """A printable Chinese page: no scripts, no external resources, CSS inline."""
    tz = ZoneInfo(report.timezone)
    p = report.period
    meta = (
        f"统计时段：{time_text(p.start, tz)} 至 {time_text(p.end, tz)}（{report.timezone}）"
        f"　生成时间：{time_text(report.generated_at, tz)}"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        f'<p class="meta">{_e(meta)}</p>',
    ]
    if not p.complete:
        parts.append(
            f'<p class="meta warn">统计时段尚未结束：数据截至 {_e(time_text(p.as_of, tz))}</p>'
        )
    if report.scope == "county":
        parts.append(_summary_html(report))
        parts.append(_loop_summary_html(report))
    parts += [_site_html(s, report, tz) for s in report.sites]
    parts.append(
        '<p class="note">说明：在线率按统计时段内“设备离线”报警的持续时间计算；'
        "报警级别按该报警在报告时已达到的最高级别统计；"
        "误报率 = 本时段内关闭的报警中处置为误报的比例。"
        + ("当前状态依据报警记录推定。" if report.status_source == "alarms" else "")
        + "</p></body></html>"
    )
    return "\n".join(parts)


def _summary_html(report: DailyReport) -> str:
    t = report.totals
    headers = [
        "机构",
        "类型",
        "设备数",
        "在线率",
        "当前离线",
        "报警数",
        "紧急",
        "未关闭",
        "其中未确认",
        "阀门/脱扣操作",
        "误报率",
    ]
    rows: list[list[object]] = [
        [
            s.name,
            label_of(SITE_KIND_LABELS, s.kind),
            s.devices,
            pct_text(s.online_rate),
            len(s.offline_now),
            s.raised,
            dict(s.by_severity).get("critical", 0),
            len(s.open_alarms),
            s.unacked_open,
            len(s.actions),
            pct_text(s.false_alarm_rate),
        ]
        for s in report.sites
    ]
    rows.append(
        [
            f"合计（{t.sites}家）",
            "",
            t.devices,
            pct_text(t.online_rate),
            t.offline_now,
            t.raised,
            dict(t.by_severity).get("critical", 0),
            t.open_alarms,
            t.unacked_open,
            t.actions,
            pct_text(t.false_alarm_rate),
        ]
    )
    return (
        '<section class="summary"><h2>全县汇总</h2>'
        + _table(headers, rows, {2, 3, 4, 5, 6, 7, 8, 9, 10})
        + "<h3>全县本时段报警统计</h3>"
        + (_counts_block(t.by_type, t.by_severity, t.by_disposition) if t.raised else _none("无"))
        + "</section>"
    )


ALARM_TYPE_LABELS: Mapping[str, str] = {k: alarm_label(k) for k in TYPE_KEYS}
SEVERITY_LABEL_MAP: Mapping[str, str] = {k: severity_label(k) for k in SEVERITY_KEYS}


def _counts_block(by_type: Counts, by_severity: Counts, by_disposition: Counts) -> str:
    """Three small tables side by side (type, severity, disposition); zero rows left out."""
    tables = [
        _table([title, "数量"], [[label_of(labels, k), n] for k, n in counts if n], {1})
        for title, counts, labels in (
            ("报警类型", by_type, ALARM_TYPE_LABELS),
            ("报警级别", by_severity, SEVERITY_LABEL_MAP),
            ("处置结果", by_disposition, DISPOSITION_LABELS),
        )
    ]
    return '<div class="counts">' + "".join(tables) + "</div>"


def _site_html(s: SiteReport, report: DailyReport, tz: ZoneInfo) -> str:
    heading = f"{s.name}（{label_of(SITE_KIND_LABELS, s.kind)}）"
    out = [f'<section class="site"><h2>{_e(heading)}</h2>']
    out.append(
        f"<p>本时段报警 <b>{s.raised}</b> 起；截至报告时未关闭报警 "
        f'<b class="{"warn" if s.open_alarms else ""}">{len(s.open_alarms)}</b> 起'
        f"（其中未确认 {s.unacked_open} 起）；设备在线率 <b>{_e(pct_text(s.online_rate))}</b>，"
        f"当前离线 {len(s.offline_now)} 台；阀门与脱扣操作 {len(s.actions)} 次。</p>"
    )
    out.append("<h3>一、本时段报警统计</h3>")
    if s.raised:
        out.append(_counts_block(s.by_type, s.by_severity, s.by_disposition))
    else:
        out.append(_none("本时段无报警。"))
    out.append(f"<h3>二、未关闭报警（截至 {_e(time_text(report.period.as_of, tz))}）</h3>")
    if s.open_alarms:
        out.append(
            _table(
                ["位置", "设备", "报警类型", "级别", "状态", "报警时间", "持续(小时)", "确认人"],
                [
                    [
                        a.location,
                        a.device,
                        alarm_label(a.type),
                        severity_label(a.severity),
                        open_state_label(a),
                        time_text(a.raised_at, tz),
                        f"{a.age_h:.1f}",
                        a.acked_by or NOT_ACKED,
                    ]
                    for a in s.open_alarms
                ],
                {6},
            )
        )
    else:
        out.append(_none("无未关闭报警。"))
    out.append("<h3>三、设备在线情况</h3>")
    where = {d.device: d.location for d in s.availability}
    offline = "、".join(f"{where.get(d, '')} {d}".strip() for d in s.offline_now) or "无"
    out.append(f"<p>当前离线设备：{_e(offline)}</p>")
    if s.availability:
        out.append(
            _table(
                ["位置", "设备", "设备类型", "在线率", "离线时长(小时)", "当前状态"],
                [
                    [
                        d.location,
                        d.device,
                        label_of(DEVICE_TYPE_LABELS, d.type),
                        pct_text(d.online_rate),
                        f"{d.offline_s / 3600:.1f}",
                        label_of(DEVICE_STATUS_LABELS, d.status_now),
                    ]
                    for d in s.availability
                ],
                {3, 4},
            )
        )
    else:
        out.append(_none("未配置设备。"))
    out.append("<h3>四、阀门与脱扣操作</h3>")
    if s.actions:
        out.append(
            _table(
                ["时间", "位置", "设备", "操作", "发起人", "结果"],
                [
                    [
                        time_text(a.sent_at, tz),
                        a.location,
                        a.device,
                        label_of(COMMAND_LABELS, a.cmd),
                        actor_label(a.requested_by),
                        _result_label(a),
                    ]
                    for a in s.actions
                ],
                set(),
            )
        )
    else:
        out.append(_none("本时段无阀门或脱扣操作。"))
    out.append("<h3>五、误报率（本时段关闭的报警）</h3>")
    if s.false_alarm_rates:
        out.append(
            _table(
                ["位置", "设备", "关闭报警数", "误报数", "误报率"],
                [
                    [r.location, r.device, r.closed, r.false_alarms, pct_text(r.rate)]
                    for r in s.false_alarm_rates
                ],
                {2, 3, 4},
            )
        )
    else:
        out.append(_none("本时段无关闭的报警。"))
    out.append("<h3>六、人员操作</h3>")
    if report.audit_unreadable is not None:
        out.append(f'<p class="warn">审计日志无法读取：{_e(report.audit_unreadable)}</p>')
    elif s.human_actions:
        out.append(
            _table(
                ["时间", "人员", "角色", "操作", "对象", "结果", "说明"],
                [
                    [
                        time_text(a.at, tz),
                        f"{a.actor_name}（{a.actor}）" if a.actor_name != a.actor else a.actor,
                        role_label(a.role),
                        action_label(a.action),
                        a.target or "",
                        result_label(a.result),
                        a.detail or "",
                    ]
                    for a in s.human_actions
                ],
                set(),
            )
        )
    else:
        out.append(_none("本时段无人员操作记录。"))
    out.append(_loop_html(s, report, tz))
    out.append("</section>")
    return "".join(out)


def open_state_label(a: OpenAlarm) -> str:
    if a.state == AlarmState.ACTIVE and a.acked_by is not None:
        return STATE_LABELS["acked"]
    return label_of(STATE_LABELS, a.state)


def _result_label(a: ActionRecord) -> str:
    text = RESULT_LABELS.get(a.result, a.result) if a.result else NO_RESULT
    return f"{text}（{a.detail}）" if a.detail else text


# ------------------------------------------------------------------ the closed loop
_HAZARD_ACTION_LABELS: Mapping[str, str] = {
    "found": "登记",
    "start": "开始整改",
    "rectified": "整改完成",
    "verified": "核查通过",
    "verification_failed": "核查未通过",
    "edited": "修改",
}


def hazard_action_label(action: str) -> str:
    return _HAZARD_ACTION_LABELS.get(action, action)


def hazard_status_label(status: str) -> str:
    return STATUS_LABELS.get(HazardStatus(status), status)


def hazard_level_label(level: str) -> str:
    return LEVEL_LABELS.get(HazardLevel(level), level)


def clock_text(c: ReportClock, tz: ZoneInfo) -> str:
    """按时 / 逾期 / 未报 with the time it was made or was due."""
    label = CLOCK_LABELS[c.state.value]
    if c.done_at is not None:
        return f"{label}（{time_text(c.done_at, tz)}报告，时限 {time_text(c.due_at, tz)}）"
    return f"{label}（时限 {time_text(c.due_at, tz)}）"


def _unreadable(what: str, why: str) -> str:
    return f'<p class="warn">{_e(what)}无法读取：{_e(why)}</p>'


def _loop_summary_html(report: DailyReport) -> str:
    """The county's line per site: incidents with a missed deadline, the self-report, the
    overdue hazards; what the bureau follows up first."""
    rows = [
        [
            s.name,
            len(s.incidents),
            "无法读取"
            if report.incidents_unreadable is not None
            else sum(i.missed_deadline for i in s.incidents),
            "无法读取"
            if s.daily_check is None
            else CHECK_STANDING_LABELS[s.daily_check.standing.value],
            "无法读取" if s.hazards is None else len(s.hazards.overdue),
        ]
        for s in report.sites
    ]
    return (
        '<section class="summary"><h3>闭环管理情况</h3>'
        + _table(["机构", "事件", "报告逾期的事件", "每日自查", "逾期隐患"], rows, {1, 2, 4})
        + "</section>"
    )


def _loop_html(s: SiteReport, report: DailyReport, tz: ZoneInfo) -> str:
    out = ["<h3>七、事件</h3>"]
    if report.incidents_unreadable is not None:
        out.append(_unreadable("事件数据库", report.incidents_unreadable))
    elif s.incidents:
        out.append(
            _table(
                ["事件", "发生时间", "电话报告", "书面报告", "续报"],
                [
                    [
                        i.title,
                        time_text(i.opened_at, tz),
                        clock_text(i.phone, tz)
                        + (f" 报告对象：{i.phone_to}" if i.phone_to else ""),
                        clock_text(i.written, tz),
                        i.follow_ups,
                    ]
                    for i in s.incidents
                ],
                {4},
            )
        )
    else:
        out.append(_none("本时段无事件。"))
    check = s.daily_check
    if check is None:
        out.append("<h3>八、每日自查</h3>")
        out.append(_unreadable("值班与自查数据库", report.duty_unreadable or ""))
    else:
        out.append(f"<h3>八、每日自查（{_e(check.day.isoformat())}）</h3>")
        standing = CHECK_STANDING_LABELS[check.standing.value]
        if check.submitted_at is None:
            cls = "warn" if check.standing.value == "missing" else "none"
            out.append(
                f'<p class="{cls}">{_e(standing)}（时限 {_e(time_text(check.due_at, tz))}）</p>'
            )
        else:
            cls = "warn" if check.standing.value == "late" else "none"
            out.append(
                f'<p class="{cls}">{_e(standing)}：{_e(time_text(check.submitted_at, tz))}，'
                f"{_e(check.submitted_by or '')}（时限 {_e(time_text(check.due_at, tz))}）</p>"
            )
            out.append(
                _table(
                    ["检查项目", "结果", "说明"],
                    [
                        [a.label, label_of(CHECK_RESULT_LABELS, a.result), a.note]
                        for a in check.answers
                    ],
                    set(),
                )
            )
    ledger = s.hazards
    out.append("<h3>九、隐患</h3>")
    if ledger is None:
        out.append(_unreadable("隐患台账", report.hazards_unreadable or ""))
        return "".join(out)
    levels = dict(ledger.by_level)
    out.append(
        _table(
            [*(hazard_status_label(k) for k, _ in ledger.by_status), "一般", "重大", "逾期"],
            [
                [
                    *(n for _, n in ledger.by_status),
                    levels.get("general", 0),
                    levels.get("major", 0),
                    len(ledger.overdue),
                ]
            ],
            set(range(len(ledger.by_status) + 3)),
        )
    )
    if ledger.overdue:
        ids = "、".join(f"#{i}" for i in ledger.overdue)
        out.append(f'<p class="warn">逾期未整改：{_e(ids)}</p>')
    if ledger.changes:
        out.append(
            _table(
                ["时间", "隐患", "部位", "等级", "变化", "人员", "说明"],
                [
                    [
                        time_text(c.at, tz),
                        f"#{c.hazard_id}",
                        c.location,
                        hazard_level_label(c.level),
                        f"{hazard_action_label(c.action)}（{hazard_status_label(c.to_status)}）",
                        c.actor,
                        c.note or "",
                    ]
                    for c in ledger.changes
                ],
                set(),
            )
        )
    else:
        out.append(_none("本时段隐患台账无变化。"))
    return "".join(out)
