"""The daily safety report: numbers from a real store, renderings, the mailer, API and CLI.

One scenario is written through the real alarm book into a real SQLite store, with alarms
before, inside and after the period 2026-11-23 14:30 -> 2026-11-24 14:30 (Asia/Shanghai),
and every section is checked against numbers worked out by hand. The mailer runs on a fake
clock against a real aiosmtpd server on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
import yaml

from gateway.alarms.book import AlarmBook, Disposition
from gateway.alarms.store import AlarmStore, CommandRecord
from gateway.app.supervisor import Gateway
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig, parse_config
from gateway.http.app import create_api
from gateway.http.reports import register_report_routes
from gateway.report import (
    XLSX_MIME,
    AlarmRow,
    DailyReport,
    LifecycleEntry,
    PeriodNotStarted,
    ReportMailer,
    SiteReport,
    UnknownSite,
    alarm_at,
    build_daily_report,
    covered_seconds,
    latest_report_day,
    next_report_time,
    render_html,
    render_xlsx,
    report_json,
    report_period,
    write_report_files,
)
from gateway.report.mailer import report_sender
from gateway.report.mailings import MailingFailure, Mailings
from rules.engine import DeviceStatus
from rules.model import AlarmChange, AlarmKey, AlarmType, ChangeKind, DeviceRef, Reason, Severity
from tests.conftest import FakeClock, MailHandler, free_port, until

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 24)
START = datetime(2026, 11, 23, 14, 30, tzinfo=SH).timestamp()
END = datetime(2026, 11, 24, 14, 30, tzinfo=SH).timestamp()
H = 3600.0


def T(hours: float) -> float:
    """`hours` after the start of the period."""
    return START + hours * H


COUNTY = "中阳县民政局"
XINGFU = "城区幸福养老服务中心"
NUANQUAN = "暖泉镇知源敬老院"


def config_data(data_dir: Path, smtp_port: int = 2525, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "gateway": {"id": "zy-gw1", "data_dir": str(data_dir), "timezone": "Asia/Shanghai"},
        "notify": {
            "channels": [
                {
                    "name": "mail",
                    "kind": "smtp",
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "sender": "gw@zhongyang.example.cn",
                }
            ]
        },
        "report": {
            "county": COUNTY,
            "mail_channel": "mail",
            "recipients": [
                {"name": "局安全科", "email": "bureau@minzheng.example.cn"},
                {"name": "李四应", "email": "li@xingfu.example.cn", "sites": ["xingfu"]},
            ],
        },
        "sites": [
            {
                "id": "xingfu",
                "name": XINGFU,
                "kind": "elderly_care",
                "devices": [
                    {
                        "id": "gas-kitchen",
                        "type": "gas_detector",
                        "location": "一楼厨房",
                        "shutoff_valve": "valve-kitchen",
                    },
                    {"id": "valve-kitchen", "type": "gas_valve", "location": "一楼厨房"},
                    {"id": "btn-lobby", "type": "alarm_button", "location": "大厅"},
                    {"id": "efm-1", "type": "electrical_fire_monitor", "location": "配电室"},
                    {"id": "co-boiler", "type": "co_detector", "location": "锅炉房"},
                ],
            },
            {
                "id": "nuanquan",
                "name": NUANQUAN,
                "kind": "elderly_care",
                "devices": [
                    {
                        "id": "gas-1",
                        "type": "gas_detector",
                        "location": "伙房",
                        "shutoff_valve": "valve-1",
                    },
                    {"id": "valve-1", "type": "gas_valve", "location": "伙房"},
                ],
            },
        ],
    }
    data.update(extra)
    return data


# ------------------------------------------------------------------ the scenario


@dataclass
class Scenario:
    """Writes alarms through the real alarm book, as the pipeline does."""

    store: AlarmStore
    book: AlarmBook = field(
        default_factory=lambda: AlarmBook(new_id=(f"A{n}" for n in itertools.count(1)).__next__)
    )
    ids: dict[str, str] = field(default_factory=dict)

    def raise_(
        self,
        name: str,
        site: str,
        device: str,
        type: AlarmType,
        severity: Severity,
        at: float,
        *,
        latched: bool = False,
        level: str | None = None,
    ) -> None:
        change = AlarmChange(
            AlarmKey(site, device, type),
            ChangeKind.RAISE,
            severity,
            Reason.THRESHOLD_EXCEEDED,
            value=None,
            level=level,
            latched=latched,
        )
        write = self.book.apply(change, at)
        assert write is not None
        self.ids[name] = write.alarm.id
        self.store.submit_alarm(write, {})

    def escalate(self, name: str, severity: Severity, at: float) -> None:
        a = self.book.get(self.ids[name])
        assert a is not None
        change = AlarmChange(a.key, ChangeKind.ESCALATE, severity, Reason.LEVEL_RAISED)
        write = self.book.apply(change, at)
        assert write is not None
        self.store.submit_alarm(write, {})

    def returned(self, name: str, at: float) -> None:
        a = self.book.get(self.ids[name])
        assert a is not None
        change = AlarmChange(a.key, ChangeKind.RAISE, a.severity, Reason.SILENT)
        write = self.book.apply(change, at)
        assert write is not None and write.alarm.id == self.ids[name]
        self.store.submit_alarm(write, {})

    def clear(self, name: str, at: float) -> None:
        a = self.book.get(self.ids[name])
        assert a is not None
        change = AlarmChange(a.key, ChangeKind.CLEAR, a.severity, Reason.RETURNED_TO_NORMAL)
        write = self.book.apply(change, at)
        assert write is not None
        self.store.submit_alarm(write, {})

    def ack(self, name: str, by: str, at: float) -> None:
        self.store.submit_alarm(self.book.ack(self.ids[name], by, None, at), {})

    def close(self, name: str, by: str, disposition: Disposition, at: float) -> None:
        write = self.book.close(self.ids[name], by, disposition, "处置说明", at)
        self.store.submit_alarm(write, {})

    def command(
        self,
        cid: str,
        site: str,
        device: str,
        cmd: str,
        by: str,
        at: float,
        result: str | None = None,
        result_after: float = 3.0,
        detail: str | None = None,
    ) -> None:
        record = CommandRecord(cid, site, device, cmd, by, None, None, at)
        self.store.submit_command(record)
        if result is not None:
            done = CommandRecord(
                cid, site, device, cmd, by, None, None, at, result, at + result_after, detail
            )
            self.store.submit_command(done)


def populate(s: Scenario) -> None:
    """The day, worked out by hand in the assertions of `test_site_report_numbers`."""
    x, n = "xingfu", "nuanquan"
    # Long before the period and closed before it: in no section.
    s.raise_("old", x, "co-boiler", AlarmType.CO, Severity.CRITICAL, START - 10 * H)
    s.clear("old", START - 6 * H)
    s.close("old", "王值班", Disposition.REAL, START - 5 * H)
    # Raised before the period, closed inside it: only in the false-alarm base (real).
    s.raise_("gas_before", x, "gas-kitchen", AlarmType.GAS_LEAK, Severity.CRITICAL, START - 2 * H)
    s.ack("gas_before", "王值班", START - 1 * H)
    s.clear("gas_before", START - 0.5 * H)
    s.close("gas_before", "王值班", Disposition.REAL, T(1))
    # The valve offline from before the start until 3 h in: 3 h offline in the period.
    s.raise_(
        "valve_off", x, "valve-kitchen", AlarmType.DEVICE_OFFLINE, Severity.MINOR, START - 3 * H
    )
    s.clear("valve_off", T(3))
    s.close("valve_off", "王值班", Disposition.MAINTENANCE, T(3.5))
    # A gas pre-alarm that became critical: counted as critical; closed as a false alarm.
    s.raise_(
        "gas_pre", x, "gas-kitchen", AlarmType.GAS_LEAK, Severity.WARNING, T(2), level="pre_alarm"
    )
    s.escalate("gas_pre", Severity.CRITICAL, T(2.1))
    s.ack("gas_pre", "李四应", T(2.2))
    s.clear("gas_pre", T(3))
    s.close("gas_pre", "李四应", Disposition.FALSE_ALARM, T(4))
    # The button pressed, never acknowledged: open at the end, 19 h old.
    s.raise_("button", x, "btn-lobby", AlarmType.FIRE_BUTTON, Severity.CRITICAL, T(5), latched=True)
    # The detector offline twice (one alarm that returned): 2 h offline; cleared, open at end.
    s.raise_("gas_off", x, "gas-kitchen", AlarmType.DEVICE_OFFLINE, Severity.MINOR, T(6))
    s.ack("gas_off", "王值班", T(6.5))
    s.clear("gas_off", T(7))
    s.returned("gas_off", T(8))  # a new occurrence: no longer acknowledged
    s.clear("gas_off", T(9))
    s.close("gas_off", "王值班", Disposition.REAL, END + 0.5 * H)  # closed after the end
    # The monitor offline 6 h (-> 75 %), closed inside the period as maintenance.
    s.raise_("efm_off", x, "efm-1", AlarmType.DEVICE_OFFLINE, Severity.MINOR, T(10))
    s.clear("efm_off", T(16))
    s.close("efm_off", "张杰荣", Disposition.MAINTENANCE, T(17))
    # The CO detector offline for the last 4 h and still: offline now; acknowledged.
    s.raise_("co_off", x, "co-boiler", AlarmType.DEVICE_OFFLINE, Severity.MINOR, T(20))
    s.ack("co_off", "张杰荣", T(21))
    # Residual current 1 h before the end; it cleared after the end: active at the end.
    s.raise_("rc", x, "efm-1", AlarmType.RESIDUAL_CURRENT, Severity.MAJOR, T(23))
    s.clear("rc", END + 1 * H)
    # After the end: in no section.
    s.raise_(
        "smoke_after", x, "btn-lobby", AlarmType.SMOKE, Severity.CRITICAL, END + 2 * H, latched=True
    )
    # The other site: one gas alarm, a test, closed inside the period.
    s.raise_("n_gas", n, "gas-1", AlarmType.GAS_LEAK, Severity.CRITICAL, T(12))
    s.clear("n_gas", T(12.5))
    s.close("n_gas", "赵管理", Disposition.TEST, T(13))

    # Commands: three in the period at xingfu, one at nuanquan; the rest outside or not actions.
    s.command("c-before", x, "valve-kitchen", "close_valve", "system", START - 1 * H, "ok")
    s.command("c-close", x, "valve-kitchen", "close_valve", "system", T(2.1), "ok")
    s.command("c-open", x, "valve-kitchen", "open_valve", "李四应", T(4.5), "ok")
    s.command("c-reset", x, "efm-1", "reset", "王值班", T(9))
    s.command("c-trip", x, "efm-1", "trip", "王值班", T(23.5), "failed", 10.0, detail="no feedback")
    s.command("c-after", x, "valve-kitchen", "close_valve", "system", END + 1 * H, "ok")
    s.command("n-close", n, "valve-1", "close_valve", "system", T(12))  # never answered


NOW = END + 3 * H  # the report is made at 17:30 (the gas_off close and rc clear are after the end)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlarmStore]:
    st = AlarmStore(tmp_path / "data" / "alarms.sqlite3")
    await st.open()
    writer = asyncio.create_task(st.run_writer())
    try:
        populate(Scenario(st))
        assert await st.flush(5)
        yield st
    finally:
        st.stop()
        await writer
        await st.close()


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    return parse_config(config_data(tmp_path / "data"))


async def county_report(store: AlarmStore, config: GatewayConfig, **kw: Any) -> DailyReport:
    return await build_daily_report(
        store, config, Inventory(config), kw.get("engine"), DAY, kw.get("site"), kw.get("now", NOW)
    )


def by_site(report: DailyReport, site: str) -> SiteReport:
    return next(s for s in report.sites if s.site == site)


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
    assert wb.sheetnames == ["汇总", "未关闭报警", "设备在线率", "阀门与脱扣操作", "误报率"]
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


# --------------------------------------------------------------------------- mailer


def mailer_for(
    store: AlarmStore, config: GatewayConfig, clock: Callable[[], float], **kw: Any
) -> ReportMailer:
    sender = report_sender(config)
    assert sender is not None
    kw.setdefault("poll_s", 0.01)
    kw.setdefault("retry_backoff_s", 0.01)
    return ReportMailer(config, store, Inventory(config), sender, clock=clock, **kw)


async def saved(data_dir: Path) -> Mailings:
    """What the mailer has on disk, as a restarted mailer reads it."""
    mailings = Mailings(data_dir / "alarms.sqlite3")
    await mailings.load()
    return mailings


async def run_for(mailer: ReportMailer, predicate: Callable[[], bool], what: str) -> None:
    """Run the mailer until `predicate` holds (then stop it), failing after 10 s."""
    task = asyncio.create_task(mailer.run())
    try:
        await until(predicate, 10.0, what)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def idle(mailer: ReportMailer, seconds: float = 0.3) -> None:
    """Run the mailer a while in real time, with its clock standing still (the tests then
    check that nothing was sent: the sleep is the behaviour under test, bounded)."""
    task = asyncio.create_task(mailer.run())
    await asyncio.sleep(seconds)
    assert not task.done() or task.exception() is None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def attachment(msg: EmailMessage) -> tuple[str | None, bytes]:
    (part,) = list(msg.iter_attachments())
    assert part.get_content_type() == XLSX_MIME
    payload = part.get_content()
    assert isinstance(payload, bytes)
    return part.get_filename(), payload


async def test_mailer_sends_at_1430_once_and_catches_up(
    store: AlarmStore,
    tmp_path: Path,
    smtp: tuple[MailHandler, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, port = smtp
    config = parse_config(config_data(tmp_path / "data", port))
    clock = FakeClock(END - 1800)  # 14:00

    # Before 14:30 nothing goes out, however long it runs in real time.
    first = mailer_for(store, config, clock)
    task = asyncio.create_task(first.run())
    try:
        await asyncio.sleep(0.3)  # nothing before 14:30: a bounded look
        assert handler.envelopes == []
        clock.now = END  # 14:30: the county report to the bureau, xingfu's to its manager
        await until(lambda: len(handler.envelopes) == 2, 10.0, "two report mails")
        await asyncio.sleep(0.2)  # and not a third: a bounded look
        assert len(handler.envelopes) == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    by_rcpt = {
        tuple(e.rcpt_tos): m for e, m in zip(handler.envelopes, handler.messages(), strict=True)
    }
    county = by_rcpt[("bureau@minzheng.example.cn",)]
    site = by_rcpt[("li@xingfu.example.cn",)]
    assert county["Subject"] == f"{COUNTY} 民政服务机构安全日报 2026-11-24"
    assert site["Subject"] == f"{XINGFU} 安全日报 2026-11-24"
    raw_subject = handler.envelopes[0].content
    assert isinstance(raw_subject, bytes) and b"=?utf-8?" in raw_subject  # RFC 2047 on the wire
    assert site["To"] == "李四应 <li@xingfu.example.cn>"
    assert site["From"] == "gw@zhongyang.example.cn"
    assert site.get_content_type() == "multipart/mixed"
    alternative = next(
        p for p in site.iter_parts() if p.get_content_type() == "multipart/alternative"
    )
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    html_part = site.get_body(preferencelist=("html",))
    assert html_part is not None
    html_text = html_part.get_content()
    assert f"<h1>{XINGFU} 安全日报 2026-11-24</h1>" in html_text and NUANQUAN not in html_text
    text_part = site.get_body(preferencelist=("plain",))
    assert text_part is not None and "未关闭 4 起" in text_part.get_content()

    name, xlsx = attachment(site)
    assert name == f"{XINGFU}_安全日报_2026-11-24.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert [r[0] for r in wb["汇总"].iter_rows(min_row=2, max_row=2, values_only=True)] == [XINGFU]
    name, xlsx = attachment(county)
    assert name == f"{COUNTY}_民政服务机构安全日报_2026-11-24.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert [r[0] for r in wb["汇总"].iter_rows(min_row=2, max_row=4, values_only=True)] == [
        XINGFU,
        NUANQUAN,
        "合计（2家）",
    ]

    state = await saved(tmp_path / "data")
    assert state.last_day == DAY and state.failures == ()

    # Restarted at 14:45: the day was sent, nothing again.
    clock.now = END + 900
    await idle(mailer_for(store, config, clock))
    assert len(handler.envelopes) == 2

    # Down at 14:30 the next day, started at 18:00: that day's reports go out at once.
    clock.now = END + 24 * H + 3.5 * H
    await run_for(
        mailer_for(store, config, clock), lambda: len(handler.envelopes) == 4, "the next day's"
    )
    subjects = {m["Subject"] for m in handler.messages()[2:]}
    assert subjects == {
        f"{XINGFU} 安全日报 2026-11-25",
        f"{COUNTY} 民政服务机构安全日报 2026-11-25",
    }

    # Started the day after a missed one, before 14:30: the missed day is only logged ...
    clock.now = END + 3 * 24 * H - 4 * H  # 2026-11-27 10:30; the 26th was never sent
    caplog.clear()
    await idle(mailer_for(store, config, clock))
    assert len(handler.envelopes) == 4
    assert "daily report for 2026-11-26 was not mailed" in caplog.text
    # ... and that day's report goes out at its time.
    second = mailer_for(store, config, clock)
    task = asyncio.create_task(second.run())
    try:
        await asyncio.sleep(0.1)  # running before 14:30, so that the test is "at its time"
        clock.now = END + 3 * 24 * H
        await until(lambda: len(handler.envelopes) == 6, 10.0, "the 27th's reports")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert all("2026-11-27" in m["Subject"] for m in handler.messages()[4:])


async def test_restart_part_way_sends_only_the_rest(
    store: AlarmStore, tmp_path: Path, smtp: tuple[MailHandler, int]
) -> None:
    handler, port = smtp
    config = parse_config(config_data(tmp_path / "data", port))
    before = await saved(tmp_path / "data")  # stopped after the county report went out
    await before.finish(date(2026, 11, 23), END - 24 * H)
    await before.record_sent(DAY, (None, "bureau@minzheng.example.cn"), "250", END)
    assert await mailer_for(store, config, FakeClock(END + 60)).send_due(END + 60) == DAY
    assert [e.rcpt_tos for e in handler.envelopes] == [["li@xingfu.example.cn"]]


async def test_upgrade_imports_the_json_state_once(
    store: AlarmStore, tmp_path: Path, smtp: tuple[MailHandler, int]
) -> None:
    handler, port = smtp
    config = parse_config(config_data(tmp_path / "data", port))
    json_state = tmp_path / "data" / "report_state.json"
    state = {  # as the versions before the table wrote it: the 24th half sent
        "last_day": "2026-11-23",
        "day": "2026-11-24",
        "delivered": ["*county*|bureau@minzheng.example.cn"],
        "failures": [
            {
                "day": "2026-11-23",
                "site": "xingfu",
                "to": "li@xingfu.example.cn",
                "error": "SMTPResponseException: (550, 'Rejected')",
                "at": "2026-11-23T14:31:00.000+08:00",
            }
        ],
    }
    json_state.write_text(json.dumps(state), encoding="utf-8")
    assert await mailer_for(store, config, FakeClock(END + 60)).send_due(END + 60) == DAY
    assert [e.rcpt_tos for e in handler.envelopes] == [["li@xingfu.example.cn"]]
    assert not json_state.exists()
    assert (tmp_path / "data" / "report_state.json.imported").exists()
    assert (await saved(tmp_path / "data")).failures == (
        MailingFailure(
            date(2026, 11, 23),
            "xingfu",
            "li@xingfu.example.cn",
            "SMTPResponseException: (550, 'Rejected')",
            datetime(2026, 11, 23, 14, 31, tzinfo=SH).timestamp(),
        ),
    )

    # The old file put back (a backup restored over the data directory) is not read again.
    (tmp_path / "data" / "report_state.json.imported").rename(json_state)
    await idle(mailer_for(store, config, FakeClock(END + 120)))
    assert len(handler.envelopes) == 1
    assert not json_state.exists()


async def test_upgrade_after_the_day_was_mailed_mails_nothing(
    store: AlarmStore, tmp_path: Path, smtp: tuple[MailHandler, int]
) -> None:
    handler, port = smtp
    config = parse_config(config_data(tmp_path / "data", port))
    state = {"last_day": "2026-11-24", "day": "2026-11-24", "delivered": [], "failures": []}
    (tmp_path / "data" / "report_state.json").write_text(json.dumps(state), encoding="utf-8")
    await idle(mailer_for(store, config, FakeClock(END + 600)))
    assert handler.envelopes == []
    assert (await saved(tmp_path / "data")).last_day == DAY


async def test_mailer_retries_a_temporary_refusal(
    store: AlarmStore, tmp_path: Path, smtp_server: Callable[[MailHandler], int]
) -> None:
    handler = MailHandler(fail=2)  # 451 twice, then accepted
    port = smtp_server(handler)
    data = config_data(tmp_path / "data", port)
    data["report"]["recipients"] = [{"name": "局安全科", "email": "bureau@minzheng.example.cn"}]
    config = parse_config(data)
    clock = FakeClock(END + 60)
    mailer = mailer_for(store, config, clock)
    # done: the mail accepted and the day recorded (stopping between the two is a restart)
    await run_for(
        mailer,
        lambda: len(handler.envelopes) == 1 and mailer.mailings.last_day == DAY,
        "mail",
    )
    assert handler.refused == 2
    state = await saved(tmp_path / "data")
    assert state.last_day == DAY and state.failures == ()


async def test_mail_that_cannot_be_sent_is_recorded(
    store: AlarmStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    smtp_server: Callable[[MailHandler], int],
) -> None:
    handler = MailHandler(fail=100, code="550 5.7.1 Rejected")  # permanent: no retry
    port = smtp_server(handler)
    config = parse_config(config_data(tmp_path / "data", port))
    mailer = mailer_for(store, config, FakeClock(END + 60))
    sent = await mailer.send_due(END + 60)
    assert sent == DAY
    assert handler.refused == 2  # one attempt per recipient: a 5xx will not get better
    state = await saved(tmp_path / "data")
    assert state.last_day == DAY
    assert sorted(f.to for f in state.failures) == [
        "bureau@minzheng.example.cn",
        "li@xingfu.example.cn",
    ]
    assert "550" in state.failures[0].error
    assert "could not be mailed" in caplog.text


async def test_unreachable_server_is_retried_then_recorded(
    store: AlarmStore, tmp_path: Path
) -> None:
    config = parse_config(config_data(tmp_path / "data", free_port()))  # nothing listens
    mailer = mailer_for(store, config, FakeClock(END + 60), attempts=3)
    async with asyncio.timeout(30):  # liveness: a refused connection must not hang the mailer
        await mailer.send_due(END + 60)
    assert len(mailer.mailings.failures) == 2
    assert mailer.mailings.last_day == DAY


# ------------------------------------------------------------------------------ API


@pytest.fixture
async def api(
    store: AlarmStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The real API of a gateway whose store holds the scenario (no broker needed: the
    gateway's tasks are not started, only its store is opened)."""
    monkeypatch.setenv("T_DUTY", "duty-secret")
    monkeypatch.setenv("T_BUREAU", "bureau-secret")
    data = config_data(tmp_path / "data")
    data["http"] = {
        "tokens": [
            {"name": "duty-room", "token_env": "T_DUTY", "role": "duty", "sites": ["xingfu"]},
            {"name": "bureau", "token_env": "T_BUREAU", "role": "bureau"},
        ]
    }
    gw = Gateway(parse_config(data), clock=lambda: NOW)
    await gw.store.open()  # a second connection to the scenario's database
    try:
        app = create_api(gw)
        register_report_routes(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
    finally:
        await gw.store.close()


BUREAU = {"authorization": "Bearer bureau-secret"}
DUTY = {"authorization": "Bearer duty-secret"}


async def test_api_serves_the_three_formats(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/reports/daily", headers=BUREAU)  # default: the latest complete day
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["scope"], data["date"]) == ("county", "2026-11-24")
    assert data["device_status_source"] == "engine"
    assert data["totals"]["raised"] == 7

    r = await api.get("/api/reports/daily?date=2026-11-24&site=xingfu&format=html", headers=DUTY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f"{XINGFU} 安全日报 2026-11-24" in r.text

    r = await api.get("/api/reports/daily?date=2026-11-24&format=xlsx", headers=BUREAU)
    assert r.status_code == 200 and r.headers["content-type"] == XLSX_MIME
    assert 'filename="daily-report-2026-11-24-county.xlsx"' in r.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[0] == "汇总"

    r = await api.get("/api/reports/daily?date=2026-11-23&site=xingfu", headers=DUTY)
    assert r.status_code == 200 and r.json()["period"]["end"] == "2026-11-23T14:30:00.000+08:00"


async def test_api_errors(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/reports/daily")
    assert r.status_code == 401
    r = await api.get("/api/reports/daily?site=nowhere", headers=BUREAU)
    assert (r.status_code, r.json()) == (404, {"error": "unknown site", "detail": "nowhere"})
    r = await api.get("/api/reports/daily?site=nuanquan", headers=DUTY)  # not the duty's site
    assert r.status_code == 404
    r = await api.get("/api/reports/daily", headers=DUTY)  # the county needs every site
    assert r.status_code == 403 and r.json()["error"] == "not allowed"
    for bad in ("2026-13-01", "24.11.2026", "20261124", "yesterday"):
        r = await api.get(f"/api/reports/daily?date={bad}", headers=BUREAU)
        assert r.status_code == 422 and r.json()["error"] == "invalid request", bad
    r = await api.get("/api/reports/daily?date=2026-12-24", headers=BUREAU)  # not begun
    assert r.status_code == 422
    r = await api.get("/api/reports/daily?format=pdf", headers=BUREAU)
    assert r.status_code == 422


# ------------------------------------------------------------------------------ CLI


async def test_cli_writes_json_html_xlsx(store: AlarmStore, tmp_path: Path) -> None:
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(
        yaml.safe_dump(config_data(tmp_path / "data"), allow_unicode=True), encoding="utf-8"
    )
    out = tmp_path / "out"
    # While the gateway (here: the fixture's store) has the database open.
    paths = await write_report_files(config_path, DAY, out, "xingfu")
    assert [p.name for p in paths] == [
        "daily-report-2026-11-24-xingfu.json",
        "daily-report-2026-11-24-xingfu.html",
        "daily-report-2026-11-24-xingfu.xlsx",
    ]
    data = json.loads(paths[0].read_text(encoding="utf-8"))
    assert data["title"] == f"{XINGFU} 安全日报 2026-11-24"
    assert data["sites"][0]["alarms"]["raised"] == 6
    assert data["sites"][0]["availability"]["online_rate"] == 0.875
    assert f"<h1>{XINGFU} 安全日报 2026-11-24</h1>" in paths[1].read_text(encoding="utf-8")
    assert openpyxl.load_workbook(paths[2]).sheetnames[-1] == "误报率"

    county = await write_report_files(config_path, DAY, out, None)
    assert county[0].name == "daily-report-2026-11-24-county.json"
    assert json.loads(county[0].read_text(encoding="utf-8"))["totals"]["sites"] == 2
    with pytest.raises(UnknownSite):
        await write_report_files(config_path, DAY, out, "nowhere")


async def test_cli_reads_a_store_no_gateway_has_open(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    st = AlarmStore(data_dir / "alarms.sqlite3")
    await st.open()
    writer = asyncio.create_task(st.run_writer())
    populate(Scenario(st))
    assert await st.flush(5)
    st.stop()
    await writer
    await st.close()
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config_data(data_dir), allow_unicode=True), "utf-8")
    paths = await write_report_files(config_path, DAY, tmp_path / "out", None)
    data = json.loads(paths[0].read_text(encoding="utf-8"))
    assert data["totals"]["raised"] == 7
    assert not (data_dir / "alarms.sqlite3-journal").exists()


async def test_cli_without_a_store(tmp_path: Path) -> None:
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(
        yaml.safe_dump(config_data(tmp_path / "nothing"), allow_unicode=True), "utf-8"
    )
    with pytest.raises(FileNotFoundError):
        await write_report_files(config_path, DAY, tmp_path / "out", None)
