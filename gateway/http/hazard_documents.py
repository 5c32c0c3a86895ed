"""The hazard ledger's documents: the XLSX in the layout of 《重大事故隐患清单》 and the
printable rectification notice (整改通知书). Times are in the gateway's zone, as the pages
show them."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Final
from zoneinfo import ZoneInfo

from openpyxl import Workbook

from gateway.hazards.model import LEVEL_LABELS, STATUS_LABELS, Hazard, Notice, overdue
from gateway.report.render_xlsx import write_table

LEDGER_SHEET: Final = "重大事故隐患清单"
LEDGER_HEADERS: Final = (
    "序号", "单位", "隐患部位", "隐患描述", "等级", "责任人", "整改措施", "整改时限", "整改情况",
    "核查人", "核查时间",
)  # fmt: skip


def _local(ts: float | None, zone: ZoneInfo) -> datetime | None:
    """Excel has no time zones: a cell holds the local time."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, zone).replace(tzinfo=None, microsecond=0)


def progress(h: Hazard, now: float) -> str:
    """整改情况: the status, and 逾期 when the deadline has passed unrectified."""
    label = STATUS_LABELS[h.status]
    return f"{label}（逾期）" if overdue(h, now) else label


def ledger_xlsx(
    hazards: Sequence[Hazard], site_names: Mapping[str, str], zone: ZoneInfo, now: float
) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = LEDGER_SHEET
    rows = [
        (
            i,
            site_names.get(h.site, h.site),
            h.location,
            h.description,
            LEVEL_LABELS[h.level],
            h.responsible,
            h.measure,
            _local(h.deadline, zone),
            progress(h, now),
            h.verified_by,
            _local(h.verified_at, zone),
        )
        for i, h in enumerate(hazards, start=1)
    ]
    write_table(ws, LEDGER_HEADERS, rows)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _day(ts: float | None, zone: ZoneInfo) -> str:
    if ts is None:
        return "—"
    d = datetime.fromtimestamp(ts, zone)
    return f"{d.year}年{d.month}月{d.day}日 {d:%H:%M}"


def notice_html(notice: Notice, hazards: Sequence[Hazard], site_name: str, zone: ZoneInfo) -> str:
    """A page to print and hand over: the number, the site, each hazard, the requirements,
    who is in charge and by when, and the receipt once acknowledged."""
    e = escape
    rows = "".join(
        f"<tr><td>{i}</td><td>{e(h.location)}</td><td>{e(h.description)}</td>"
        f"<td>{LEVEL_LABELS[h.level]}</td><td>{e(h.measure)}</td>"
        f"<td>{STATUS_LABELS[h.status]}</td></tr>"
        for i, h in enumerate(hazards, start=1)
    )
    receipt = (
        f"{e(notice.received_by or '')}　{_day(notice.received_at, zone)}"
        if notice.received_at is not None
        else "（未签收）"
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>整改通知书 {e(notice.number)}</title>
<style>
body {{ font-family: "SimSun", "Songti SC", serif; max-width: 48em; margin: 2em auto; }}
h1 {{ text-align: center; letter-spacing: .3em; }}
.number {{ text-align: right; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #000; padding: .3em .5em; vertical-align: top; }}
.requirements {{ white-space: pre-wrap; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>整改通知书</h1>
<p class="number">{e(notice.number)}</p>
<p>{e(site_name)}：</p>
<p>经检查，你单位存在下列安全隐患，现责令限期整改：</p>
<table><thead><tr><th>序号</th><th>隐患部位</th><th>隐患描述</th><th>等级</th>
<th>整改措施</th><th>整改情况</th></tr></thead><tbody>{rows}</tbody></table>
<p>整改要求：</p><p class="requirements">{e(notice.requirements)}</p>
<p>整改责任人：{e(notice.person_in_charge)}</p>
<p>整改时限：{_day(notice.deadline, zone)}前</p>
<p>签发人：{e(notice.issued_by)}　签发时间：{_day(notice.issued_at, zone)}</p>
<p>签收：{receipt}</p>
</body></html>
"""
