"""What a daily report is made of: its output records, labels and fixed key orders, and the
device list it reads (the alarm and command rows it reads are the store's, in
`gateway.alarms.rows`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Literal

from gateway.alarms.book import SYSTEM, Disposition
from gateway.incidents.model import ClockState, ReportClock
from rules.model import AlarmType, CommandKind, Severity

SITE_KIND_LABELS: Mapping[str, str] = {
    "elderly_care": "养老服务机构",
    "child_welfare": "儿童福利机构",
    "relief_station": "救助管理机构",
    "funeral": "殡葬服务机构",
    "marriage_registry": "婚姻登记机构",
    "other": "其他",
}
DEVICE_TYPE_LABELS: Mapping[str, str] = {
    "gas_detector": "可燃气体探测器",
    "co_detector": "一氧化碳探测器",
    "gas_valve": "燃气切断阀",
    "alarm_button": "一键报警按钮",
    "smoke_detector": "感烟探测器",
    "electrical_fire_monitor": "电气火灾监控探测器",
    "gas_alarm_controller": "可燃气体报警控制器",
}
OPEN = "open"  # the disposition key of an alarm not closed at the report time
DISPOSITION_LABELS: Mapping[str, str] = {
    Disposition.REAL.value: "真实报警",
    Disposition.FALSE_ALARM.value: "误报",
    Disposition.TEST.value: "测试",
    Disposition.MAINTENANCE.value: "维护",
    OPEN: "未处置",
}
DEVICE_STATUS_LABELS: Mapping[str, str] = {
    "online": "在线",
    "offline": "离线",
    "fault": "故障",
    "unknown": "未知",
}
ACTION_COMMANDS = (
    CommandKind.CLOSE_VALVE.value,
    CommandKind.OPEN_VALVE.value,
    CommandKind.TRIP.value,
)
COMMAND_LABELS: Mapping[str, str] = {
    CommandKind.CLOSE_VALVE.value: "关闭燃气阀",
    CommandKind.OPEN_VALVE.value: "开启燃气阀",
    CommandKind.TRIP.value: "脱扣断电",
}
RESULT_LABELS: Mapping[str, str] = {"ok": "成功", "failed": "失败"}
NO_RESULT = "无回执"  # no answer recorded: a valve confirmed by its reading, or none at all
NOT_ACKED = "未确认"
SYSTEM_ACTOR = "系统自动"

# Fixed key orders, so that tables and spreadsheet columns do not move from day to day.
TYPE_KEYS: tuple[str, ...] = tuple(t.value for t in AlarmType)
SEVERITY_KEYS: tuple[str, ...] = tuple(
    s.value for s in sorted(Severity, key=lambda s: s.rank, reverse=True)
)
DISPOSITION_KEYS: tuple[str, ...] = (*(d.value for d in Disposition), OPEN)

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATE_FILE = "report_state.json"

SEVERITY_RANK: Mapping[str, int] = {s.value: s.rank for s in Severity}


def label_of(table: Mapping[str, str], key: str | None) -> str:
    return table.get(key, key) if key is not None else ""


def actor_label(name: str) -> str:
    return SYSTEM_ACTOR if name == SYSTEM else name


# ------------------------------------------------------------------------- input rows


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    site: str
    device: str
    type: str
    location: str
    name: str | None = None


# ------------------------------------------------------------------------------ output

Counts = tuple[tuple[str, int], ...]  # (key, count) in a fixed key order


@dataclass(frozen=True, slots=True)
class Period:
    day: date
    start: float
    end: float
    as_of: float  # min(end, the time the report was made): what the report could see

    @property
    def complete(self) -> bool:
        return self.as_of >= self.end


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    id: str
    site: str
    device: str
    location: str
    type: str
    severity: str  # at the report time
    state: str  # active | cleared, at the report time
    acked_by: str | None  # None: not acknowledged (at the report time)
    acked_at: float | None
    raised_at: float
    age_h: float  # hours from raised to the report time


@dataclass(frozen=True, slots=True)
class DeviceAvailability:
    site: str
    device: str
    type: str
    location: str
    offline_s: float  # within the period (up to the report time)
    covered_s: float  # the part of the period the report saw
    online_rate: float | None  # None: no part of the period seen yet
    status_now: str  # online | offline | fault | unknown, when the report was made


@dataclass(frozen=True, slots=True)
class ActionRecord:
    id: str
    site: str
    device: str
    location: str
    cmd: str
    requested_by: str
    sent_at: float
    result: str | None  # ok | failed | None (no answer recorded)
    result_at: float | None
    detail: str | None
    alarm_id: str | None


@dataclass(frozen=True, slots=True)
class FalseAlarmRate:
    site: str
    device: str
    location: str
    closed: int  # alarms of the device closed in the period
    false_alarms: int  # of which with disposition false_alarm
    rate: float


@dataclass(frozen=True, slots=True)
class HumanAction:
    """What a person did at the site, from the audit trail (`gateway.audit`)."""

    seq: int
    at: float
    actor: str  # login or token name
    actor_name: str
    role: str
    action: str  # as recorded: alarm.ack, command.close_valve...
    target: str | None
    result: str  # ok | refused | failed | locked...
    detail: str | None  # the recorded detail as "key: value；..."


# ------------------------------------------------------------------ the closed loop
# Incidents, the daily self-report and the hazard ledger (issue 12), each read read-only
# from its owner's database; a database that cannot be read is said, not fatal.
CLOCK_LABELS: Mapping[str, str] = {
    ClockState.DONE.value: "按时",
    ClockState.DONE_LATE.value: "逾期",
    ClockState.MISSED.value: "未报",
    ClockState.RUNNING.value: "计时中",
}


@dataclass(frozen=True, slots=True)
class IncidentLine:
    """An incident the period has to account for, its report clocks as at the report time."""

    id: str
    title: str
    alarm_id: str | None
    opened_at: float
    opened_by: str
    closed_at: float | None
    phone: ReportClock
    phone_to: str | None  # whom the phone report went to
    written: ReportClock
    follow_ups: int

    @property
    def missed_deadline(self) -> bool:
        """Either report not made by its deadline (made late, or not at all)."""
        late = (ClockState.MISSED, ClockState.DONE_LATE)
        return self.phone.state in late or self.written.state in late


class CheckStanding(StrEnum):
    """A site's self-report as the report sees it (`gateway.duty.model.Standing`, plus not
    due yet for a report made before the due time)."""

    SUBMITTED = "submitted"
    LATE = "late"
    MISSING = "missing"
    NOT_DUE = "not_due"


CHECK_STANDING_LABELS: Mapping[str, str] = {
    CheckStanding.SUBMITTED.value: "已提交",
    CheckStanding.LATE.value: "逾期提交",
    CheckStanding.MISSING.value: "未提交",
    CheckStanding.NOT_DUE.value: "未到时限",
}
CHECK_RESULT_LABELS: Mapping[str, str] = {
    "ok": "正常",
    "problem": "有问题",
    "not_applicable": "不适用",
}


@dataclass(frozen=True, slots=True)
class CheckLine:
    item: str
    label: str
    result: str  # ok | problem | not_applicable
    note: str


@dataclass(frozen=True, slots=True)
class SelfReport:
    """The site's self-report due in the period (its day's `daily_checks.due`)."""

    day: date
    due_at: float
    standing: CheckStanding
    submitted_at: float | None  # the first submission's time (what on time is judged by)
    submitted_by: str | None
    answers: tuple[CheckLine, ...]


@dataclass(frozen=True, slots=True)
class HazardChange:
    """One step on a hazard's timeline in the period."""

    hazard_id: int
    location: str
    level: str
    at: float
    action: str  # found | start | rectified | verified | verification_failed
    actor: str
    from_status: str | None
    to_status: str
    note: str | None


@dataclass(frozen=True, slots=True)
class HazardLedger:
    """The site's ledger as it stood at the report time, and what changed in the period."""

    by_status: Counts
    by_level: Counts
    overdue: tuple[int, ...]  # hazard ids past their deadline, not rectified
    changes: tuple[HazardChange, ...]


@dataclass(frozen=True, slots=True)
class SiteReport:
    site: str
    name: str
    kind: str
    devices: int
    raised: int
    by_type: Counts
    by_severity: Counts
    by_disposition: Counts
    open_alarms: tuple[OpenAlarm, ...]
    availability: tuple[DeviceAvailability, ...]
    online_rate: float | None
    offline_now: tuple[str, ...]  # device ids
    actions: tuple[ActionRecord, ...]
    false_alarm_rates: tuple[FalseAlarmRate, ...]
    closed: int
    false_alarms: int
    human_actions: tuple[HumanAction, ...] = ()
    incidents: tuple[IncidentLine, ...] = ()
    daily_check: SelfReport | None = None  # None: the duty database could not be read
    hazards: HazardLedger | None = None  # None: the hazards database could not be read

    @property
    def unacked_open(self) -> int:
        return sum(1 for a in self.open_alarms if a.acked_by is None)

    @property
    def false_alarm_rate(self) -> float | None:
        return self.false_alarms / self.closed if self.closed else None


@dataclass(frozen=True, slots=True)
class Totals:
    sites: int
    devices: int
    raised: int
    by_type: Counts
    by_severity: Counts
    by_disposition: Counts
    open_alarms: int
    unacked_open: int
    online_rate: float | None
    offline_now: int
    actions: int
    closed: int
    false_alarms: int

    @property
    def false_alarm_rate(self) -> float | None:
        return self.false_alarms / self.closed if self.closed else None


@dataclass(frozen=True, slots=True)
class DailyReport:
    scope: Literal["county", "site"]
    title: str
    county: str
    timezone: str
    period: Period
    generated_at: float
    status_source: Literal["engine", "alarms"]  # where "offline now" comes from
    sites: tuple[SiteReport, ...]
    totals: Totals
    # Why the people's actions are missing (the audit log could not be read); None: read.
    audit_unreadable: str | None = None
    # Why a closed-loop section is missing (its database could not be read); None: read.
    incidents_unreadable: str | None = None
    duty_unreadable: str | None = None
    hazards_unreadable: str | None = None

    @property
    def stem(self) -> str:
        """File name stem, ASCII: daily-report-2026-11-24-county / -xingfu."""
        which = "county" if self.scope == "county" else self.sites[0].site
        return f"daily-report-{self.period.day.isoformat()}-{which}"


class UnknownSite(LookupError):
    pass


class PeriodNotStarted(ValueError):
    pass
