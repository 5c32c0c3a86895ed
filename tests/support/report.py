"""The daily report's day: 2026-11-23 14:30 -> 2026-11-24 14:30 (Asia/Shanghai), a two-site
county configuration, and one scenario written through the real alarm book into a real
store, with alarms before, inside and after the period (numbers worked out by hand in
tests/gateway/report/test_report_figures.py)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.alarms.book import AlarmBook, Disposition
from gateway.alarms.store import AlarmStore, CommandRecord
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig
from gateway.report import (
    DailyReport,
    SiteReport,
    build_daily_report,
)
from rules.model import AlarmChange, AlarmKey, AlarmType, ChangeKind, Reason, Severity

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


async def county_report(store: AlarmStore, config: GatewayConfig, **kw: Any) -> DailyReport:
    return await build_daily_report(
        store, config, Inventory(config), kw.get("engine"), DAY, kw.get("site"), kw.get("now", NOW)
    )


def by_site(report: DailyReport, site: str) -> SiteReport:
    return next(s for s in report.sites if s.site == site)
