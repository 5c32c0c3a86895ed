"""The daily safety report: periods, figures from a real store, and their renderings.

One scenario (tests.support.report) is written through the real alarm book into a real
SQLite store, with alarms before, inside and after the period 2026-11-23 14:30 ->
2026-11-24 14:30 (Asia/Shanghai), and every section is checked against numbers worked out by
hand. The mailer is in test_report_mailer.py, the API and CLI in test_report_api_cli.py.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from gateway.alarms.store import AlarmStore
from gateway.config.loading import parse_config
from gateway.config.schema import GatewayConfig
from gateway.report import (
    AlarmRow,
    LifecycleEntry,
    PeriodNotStarted,
    UnknownSite,
    alarm_at,
    covered_seconds,
    latest_report_day,
    next_report_time,
    render_html,
    render_xlsx,
    report_json,
    report_period,
)
from rules.engine import DeviceStatus
from rules.model import DeviceRef
from tests.support.report import (
    COUNTY,
    DAY,
    END,
    NOW,
    NUANQUAN,
    SH,
    START,
    XINGFU,
    H,
    T,
    by_site,
    config_data,
    county_report,
)

# ------------------------------------------------------------------------ periods


def test_period_is_1430_to_1430_shanghai_which_is_0630_utc() -> None:
    start, end = report_period(DAY, "14:30", SH)
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2026, 11, 24, 6, 30, tzinfo=UTC)
    assert (start, end) == (START, END)


def test_next_report_time_around_the_boundary() -> None:
    at = END  # 2026-11-24 14:30 local
    tomorrow = datetime(2026, 11, 25, 14, 30, tzinfo=SH).timestamp()
    assert next_report_time(at - 1, "14:30", SH) == at
    assert next_report_time(at - 14 * H, "14:30", SH) == at  # 00:30 the same day
    assert next_report_time(at, "14:30", SH) == tomorrow  # strictly after: it is due now
    assert next_report_time(at + 1, "14:30", SH) == tomorrow
    assert next_report_time(at + 9.4 * H, "14:30", SH) == tomorrow  # 23:54
    # Local midnight is 16:00 UTC: the local date decides, not the UTC one.
    assert next_report_time(
        datetime(2026, 11, 24, 16, 30, tzinfo=UTC).timestamp(), "14:30", SH
    ) == (tomorrow)
    assert next_report_time(at, "09:05", SH) == datetime(2026, 11, 25, 9, 5, tzinfo=SH).timestamp()
    with pytest.raises(ValueError):
        next_report_time(at, "25:00", SH)


def test_period_across_a_dst_change_keeps_the_wall_clock_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # summer time ends 2026-10-25 03:00
    start, end = report_period(date(2026, 10, 25), "14:30", berlin)
    assert end - start == 25 * H
    assert datetime.fromtimestamp(start, berlin).hour == datetime.fromtimestamp(end, berlin).hour


def test_latest_report_day() -> None:
    assert latest_report_day(END - 1, "14:30", SH) == date(2026, 11, 23)
    assert latest_report_day(END, "14:30", SH) == DAY
    assert latest_report_day(END + 9 * H, "14:30", SH) == DAY  # 23:30


# ------------------------------------------------------------------ pure helpers


def test_covered_seconds_is_the_union_within_the_window() -> None:
    spans = [(0.0, 10.0), (5.0, 15.0), (20.0, float("inf")), (-5.0, 1.0)]
    assert covered_seconds(spans, 0.0, 30.0) == 25.0  # 0..15 and 20..30
    assert covered_seconds([], 0.0, 30.0) == 0.0


def test_alarm_at_replays_the_timeline() -> None:
    row = AlarmRow(
        "a", "s", "d", "device_offline", "minor", "cleared", 100.0,
        acked_at=150.0, acked_by="王值班", cleared_at=400.0,
        events=(
            LifecycleEntry(100.0, "raised", "system", "minor"),
            LifecycleEntry(150.0, "acked", "王值班", "minor"),
            LifecycleEntry(200.0, "cleared", "system", "minor"),
            LifecycleEntry(300.0, "returned", "system", "minor"),
            LifecycleEntry(400.0, "cleared", "system", "minor"),
        ),
    )  # fmt: skip
    assert alarm_at(row, 99.0) is None
    at = alarm_at(row, 160.0)
    assert at is not None and (at.state, at.acked_by) == ("active", "王值班")
    at = alarm_at(row, 350.0)  # the row still says 王值班, but the return reset it
    assert at is not None and (at.state, at.acked_by) == ("active", None)
    at = alarm_at(row, 500.0)
    assert at is not None and at.state == "cleared"


# ------------------------------------------------------------ numbers from the store


async def test_site_report_numbers(store: AlarmStore, config: GatewayConfig) -> None:
    report = await county_report(store, config, site="xingfu")
    assert report.scope == "site"
    assert report.title == f"{XINGFU} 安全日报 2026-11-24"
    assert (report.period.start, report.period.end, report.period.as_of) == (START, END, END)
    assert report.period.complete
    (s,) = report.sites
    assert (s.site, s.name, s.kind, s.devices) == ("xingfu", XINGFU, "elderly_care", 5)

    # Raised in the period: gas_pre, button, gas_off, efm_off, co_off, rc.
    assert s.raised == 6
    assert {k: v for k, v in s.by_type if v} == {
        "gas_leak": 1,
        "fire_button": 1,
        "device_offline": 3,
        "residual_current": 1,
    }
    assert dict(s.by_severity) == {"critical": 2, "major": 1, "minor": 3, "warning": 0}
    assert dict(s.by_disposition) == {
        "real": 0,
        "false_alarm": 1,
        "test": 0,
        "maintenance": 1,
        "open": 4,  # button, gas_off (closed after the end), co_off, rc
    }

    # Not closed at 14:30: most severe first, then oldest.
    opened = [(a.device, a.type, a.severity, a.state, a.age_h, a.acked_by) for a in s.open_alarms]
    assert opened == [
        ("btn-lobby", "fire_button", "critical", "active", 19.0, None),
        ("efm-1", "residual_current", "major", "active", 1.0, None),
        ("gas-kitchen", "device_offline", "minor", "cleared", 18.0, None),
        ("co-boiler", "device_offline", "minor", "active", 4.0, "张杰荣"),
    ]
    assert s.unacked_open == 3
    assert s.open_alarms[0].location == "大厅"

    rates = {d.device: d.online_rate for d in s.availability}
    assert rates == {
        "gas-kitchen": pytest.approx(1 - 2 / 24),  # offline 6-7 h and 8-9 h
        "valve-kitchen": 0.875,  # offline until 3 h in
        "btn-lobby": 1.0,
        "efm-1": 0.75,  # offline 6 h
        "co-boiler": pytest.approx(1 - 4 / 24),  # offline the last 4 h
    }
    assert {d.device: d.offline_s / H for d in s.availability}["efm-1"] == 6.0
    assert s.online_rate == 0.875  # 15 h offline of 5 x 24 h
    assert s.offline_now == ("co-boiler",)
    assert {d.device: d.status_now for d in s.availability}["co-boiler"] == "offline"
    assert report.status_source == "alarms"

    actions = [(a.cmd, a.requested_by, a.sent_at, a.result) for a in s.actions]
    assert actions == [
        ("close_valve", "system", T(2.1), "ok"),
        ("open_valve", "李四应", T(4.5), "ok"),
        ("trip", "王值班", T(23.5), "failed"),
    ]
    assert s.actions[2].detail == "no feedback"

    # Closed in the period: gas_before (real), valve_off, gas_pre (false), efm_off.
    false_rates = {r.device: (r.closed, r.false_alarms, r.rate) for r in s.false_alarm_rates}
    assert false_rates == {
        "gas-kitchen": (2, 1, 0.5),
        "efm-1": (1, 0, 0.0),
        "valve-kitchen": (1, 0, 0.0),
    }
    assert (s.closed, s.false_alarms) == (4, 1)


async def test_county_report_has_every_site_and_totals(
    store: AlarmStore, config: GatewayConfig
) -> None:
    report = await county_report(store, config)
    assert report.scope == "county"
    assert report.title == f"{COUNTY} 民政服务机构安全日报 2026-11-24"
    assert [s.site for s in report.sites] == ["xingfu", "nuanquan"]
    n = by_site(report, "nuanquan")
    assert (n.raised, dict(n.by_disposition)["test"], n.online_rate) == (1, 1, 1.0)
    assert [(a.cmd, a.result) for a in n.actions] == [("close_valve", None)]
    assert [(r.device, r.closed, r.false_alarms) for r in n.false_alarm_rates] == [("gas-1", 1, 0)]
    t = report.totals
    assert (t.sites, t.devices, t.raised) == (2, 7, 7)
    assert dict(t.by_severity)["critical"] == 3
    assert (t.open_alarms, t.unacked_open, t.offline_now, t.actions) == (4, 3, 1, 4)
    assert t.online_rate == pytest.approx(1 - 15 / (7 * 24), abs=1e-6)
    assert (t.closed, t.false_alarms, t.false_alarm_rate) == (5, 1, 0.2)


async def test_report_made_at_a_later_time_says_the_same(
    store: AlarmStore, config: GatewayConfig
) -> None:
    """The report is of the period: made a week later it has the same numbers (only the
    devices' "now" status moves on)."""
    now = await county_report(store, config)
    later = await county_report(store, config, now=NOW + 7 * 24 * H)
    assert report_json(now)["totals"] == report_json(later)["totals"]
    assert now.sites[0].open_alarms == later.sites[0].open_alarms


async def test_report_before_the_end_covers_the_period_so_far(
    store: AlarmStore, config: GatewayConfig
) -> None:
    report = await county_report(store, config, site="xingfu", now=T(12))
    assert not report.period.complete and report.period.as_of == T(12)
    (s,) = report.sites
    assert s.raised == 4  # gas_pre, button, gas_off, efm_off
    assert {d.device: d.online_rate for d in s.availability}["efm-1"] == pytest.approx(1 - 2 / 12)
    # the button; gas_off (cleared by then, closed after the end) and efm_off, oldest first
    assert [(a.device, a.state) for a in s.open_alarms] == [
        ("btn-lobby", "active"),
        ("gas-kitchen", "cleared"),
        ("efm-1", "active"),
    ]
    with pytest.raises(PeriodNotStarted):
        await county_report(store, config, now=START - 1)
    with pytest.raises(UnknownSite):
        await county_report(store, config, site="nowhere")


async def test_engine_status_decides_offline_now(store: AlarmStore, config: GatewayConfig) -> None:
    def status(ref: DeviceRef) -> DeviceStatus:
        if ref.device == "valve-kitchen":
            return DeviceStatus(online=False, fault=False, last_seen=NOW - 600, values={})
        if ref.device == "btn-lobby":
            return DeviceStatus(online=True, fault=False, last_seen=None, values={})
        return DeviceStatus(online=True, fault=False, last_seen=NOW - 5, values={})

    report = await county_report(store, config, site="xingfu", engine=status)
    (s,) = report.sites
    assert report.status_source == "engine"
    assert s.offline_now == ("valve-kitchen",)
    statuses = {d.device: d.status_now for d in s.availability}
    assert statuses["btn-lobby"] == "unknown"  # never heard since start-up
    assert statuses["co-boiler"] == "online"
    assert s.online_rate == 0.875  # the rate is the period's, from the alarms


# ---------------------------------------------------------------------- renderings


async def test_json_times_have_the_offset(store: AlarmStore, config: GatewayConfig) -> None:
    data = report_json(await county_report(store, config))
    json.dumps(data, ensure_ascii=False)  # serialisable as it is
    assert data["period"] == {
        "start": "2026-11-23T14:30:00.000+08:00",
        "end": "2026-11-24T14:30:00.000+08:00",
        "as_of": "2026-11-24T14:30:00.000+08:00",
        "complete": True,
    }
    assert data["generated_at"] == "2026-11-24T17:30:00.000+08:00"
    x = data["sites"][0]
    assert x["open_alarms"][0]["raised_at"] == "2026-11-23T19:30:00.000+08:00"
    assert x["open_alarms"][0]["acked_by"] is None
    assert x["availability"]["offline_now"] == ["co-boiler"]
    assert x["actions"][0]["sent_at"] == "2026-11-23T16:36:00.000+08:00"
    assert x["alarms"]["by_type"]["device_offline"] == 3
    assert data["totals"]["false_alarm_rate"] == 0.2


async def test_html_is_a_chinese_page_with_the_numbers(
    store: AlarmStore, config: GatewayConfig
) -> None:
    page = render_html(await county_report(store, config))
    assert page.startswith("<!DOCTYPE html>")
    assert f"<title>{COUNTY} 民政服务机构安全日报 2026-11-24</title>" in page
    for heading in (
        "全县汇总",
        "本时段报警统计",
        "未关闭报警",
        "设备在线情况",
        "阀门与脱扣操作",
        "误报率",
    ):
        assert heading in page
    assert "统计时段：2026-11-23 14:30 至 2026-11-24 14:30" in page
    assert XINGFU in page and NUANQUAN in page
    assert "一键报警" in page and "未确认" in page and "张杰荣" in page
    assert "75.0%" in page and "87.5%" in page  # efm-1, and the site
    assert "关闭燃气阀" in page and "脱扣断电" in page and "失败（no feedback）" in page
    assert "系统自动" in page and "无回执" in page
    assert "50.0%" in page  # gas-kitchen's false-alarm rate
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from anywhere
    site_page = render_html(await county_report(store, config, site="xingfu"))
    assert f"<h1>{XINGFU} 安全日报 2026-11-24</h1>" in site_page
    assert "全县汇总" not in site_page and NUANQUAN not in site_page


async def test_html_escapes_names(store: AlarmStore, tmp_path: Path) -> None:
    data = config_data(tmp_path / "data")
    data["sites"][0]["name"] = "<script>alert(1)</script>"
    page = render_html(await county_report(store, parse_config(data), site="xingfu"))
    assert "<script>" not in page and "&lt;script&gt;" in page


async def test_xlsx_opens_with_the_sheets_and_values(
    store: AlarmStore, config: GatewayConfig
) -> None:
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(await county_report(store, config))))
    assert wb.sheetnames == [
        "汇总", "未关闭报警", "设备在线率", "阀门与脱扣操作", "误报率", "人员操作",
        "事件", "每日自查", "隐患",
    ]  # fmt: skip
    summary = wb["汇总"]
    headers = [c.value for c in summary[1]]
    assert all(c.font.bold for c in summary[1])
    rows = {
        r[0]: dict(zip(headers, r, strict=False))
        for r in summary.iter_rows(min_row=2, values_only=True)
        if r[0]
    }
    x = rows[XINGFU]
    assert (x["设备数"], x["在线率"], x["当前离线"], x["报警数"]) == (5, 0.875, 1, 6)
    assert (x["紧急"], x["一键报警"], x["设备离线"], x["误报"], x["未处置"]) == (2, 1, 3, 1, 4)
    assert (x["未关闭报警"], x["其中未确认"], x["阀门与脱扣操作"], x["误报率"]) == (4, 3, 3, 0.25)
    total = rows["合计（2家）"]
    assert (total["设备数"], total["报警数"], total["误报率"]) == (7, 7, 0.2)
    assert summary.column_dimensions["A"].width >= 20  # the Chinese site names fit

    open_rows = list(wb["未关闭报警"].iter_rows(min_row=2, values_only=True))
    assert [r[2] for r in open_rows] == ["btn-lobby", "efm-1", "gas-kitchen", "co-boiler"]
    assert open_rows[0][6] == datetime(2026, 11, 23, 19, 30)  # local time, Excel has no zones
    assert (open_rows[0][7], open_rows[0][8]) == (19.0, "未确认")
    assert open_rows[3][8] == "张杰荣"
    online = {r[2]: r[4] for r in wb["设备在线率"].iter_rows(min_row=2, values_only=True)}
    assert online["efm-1"] == 0.75 and online["gas-1"] == 1.0
    acts = list(wb["阀门与脱扣操作"].iter_rows(min_row=2, values_only=True))
    assert [(r[3], r[4], r[5], r[6]) for r in acts] == [
        ("valve-kitchen", "关闭燃气阀", "系统自动", "成功"),
        ("valve-kitchen", "开启燃气阀", "李四应", "成功"),
        ("efm-1", "脱扣断电", "王值班", "失败"),
        ("valve-1", "关闭燃气阀", "系统自动", "无回执"),
    ]
    false_rows = {(r[0], r[2]): r[3:] for r in wb["误报率"].iter_rows(min_row=2, values_only=True)}
    assert false_rows[(XINGFU, "gas-kitchen")] == (2, 1, 0.5)
    assert false_rows[(NUANQUAN, "gas-1")] == (1, 0, 0.0)
