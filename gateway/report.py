"""The daily safety report (seeds 003, 004: every institution reports to the bureau before 15:00).

One report covers the 24 h up to the configured time (`report.time`, 14:30 by default, in the
gateway's zone): the report for 2026-11-24 covers 2026-11-23 14:30 -> 2026-11-24 14:30. It is
made per site, or for the whole county (every site, with totals), and holds:

- alarms raised in the period, by type, by (highest) severity and by disposition;
- alarms not closed at the report time (raised at any time before it), with age, state and
  who acknowledged them;
- each device's online rate over the period (offline time taken from `device_offline`
  alarms) and the devices offline when the report is made;
- valve and trip commands sent in the period, with who asked and the result;
- the false-alarm rate of each device whose alarms were closed in the period.

Everything is computed by pure functions from rows (`AlarmRow`, `CommandRecord`); the thin
I/O around them reads the store's read connection, renders HTML/XLSX/JSON, mails the reports
every day (`ReportMailer`), serves them over HTTP (`register_report_routes`) and writes them to
files for the CLI (`write_report_files`).

The report describes the period as it was at its end: an alarm's state, acknowledgement and
severity are rebuilt from its timeline at the report time, so the report for a past day made
later says the same as the one mailed that day (except "offline now", which is now).
"""

from __future__ import annotations

import asyncio
import email.utils
import html
import io
import json
import logging
import math
import os
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiosmtplib
import aiosqlite
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from gateway.alarms import SYSTEM, Action, AlarmState, Disposition
from gateway.config import GatewayConfig, ReportRecipient, SiteConfig, SmtpChannel, load_config
from gateway.inventory import Inventory
from gateway.notify.base import SendResult
from gateway.notify.mail import _smtp_failure
from gateway.notify.render import STATE_LABELS, alarm_label, severity_label
from gateway.store import CommandRecord
from gateway.views import Clockface
from rules.engine import DeviceStatus
from rules.model import AlarmType, CommandKind, DeviceRef, Severity

if TYPE_CHECKING:
    from gateway.supervisor import Gateway

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------- labels

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

_RANK: Mapping[str, int] = {s.value: s.rank for s in Severity}
_LIFECYCLE = (
    Action.RAISED.value,
    Action.RETURNED.value,
    Action.REPEATED.value,
    Action.ESCALATED.value,
    Action.CLEARED.value,
    Action.ACKED.value,
    Action.CLOSED.value,
)


def _label(table: Mapping[str, str], key: str | None) -> str:
    return table.get(key, key) if key is not None else ""


def _actor(name: str) -> str:
    return SYSTEM_ACTOR if name == SYSTEM else name


# ------------------------------------------------------------------------- input rows


@dataclass(frozen=True, slots=True)
class LifecycleEntry:
    """One state-changing entry of an alarm's timeline (notification entries are left out)."""

    at: float
    action: str
    actor: str
    severity: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """An alarm as stored, with its lifecycle entries in order (may be empty)."""

    id: str
    site: str
    device: str
    type: str
    severity: str
    state: str
    raised_at: float
    acked_at: float | None = None
    acked_by: str | None = None
    cleared_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    disposition: str | None = None
    events: tuple[LifecycleEntry, ...] = ()


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

    @property
    def stem(self) -> str:
        """File name stem, ASCII: daily-report-2026-11-24-county / -xingfu."""
        which = "county" if self.scope == "county" else self.sites[0].site
        return f"daily-report-{self.period.day.isoformat()}-{which}"


class UnknownSite(LookupError):
    pass


class PeriodNotStarted(ValueError):
    pass


# ------------------------------------------------------------------------------- time


def _hhmm(hhmm: str) -> tuple[int, int]:
    m = re.fullmatch(r"([01][0-9]|2[0-3]):([0-5][0-9])", hhmm)
    if m is None:
        raise ValueError(f"report time must be HH:MM, got {hhmm!r}")
    return int(m.group(1)), int(m.group(2))


def report_instant(day: date, hhmm: str, tz: ZoneInfo) -> float:
    """Epoch seconds of `hhmm` local time on `day` (the end of that day's report period)."""
    h, m = _hhmm(hhmm)
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz).timestamp()


def report_period(day: date, hhmm: str, tz: ZoneInfo) -> tuple[float, float]:
    """(start, end): from `hhmm` the day before to `hhmm` on `day`, local time.

    Built from local dates rather than end - 86400, so a DST change gives a 23 or 25 h period
    that still starts and ends at the configured wall-clock time.
    """
    return report_instant(day - timedelta(days=1), hhmm, tz), report_instant(day, hhmm, tz)


def next_report_time(now: float, hhmm: str, tz: ZoneInfo) -> float:
    """The first report time strictly after `now`."""
    today = datetime.fromtimestamp(now, tz).date()
    for offset in range(-1, 3):
        t = report_instant(today + timedelta(days=offset), hhmm, tz)
        if t > now:
            return t
    raise AssertionError("unreachable: a report time falls within any two days")


def latest_report_day(now: float, hhmm: str, tz: ZoneInfo) -> date:
    """The day of the latest complete report period: today once `hhmm` has passed."""
    today = datetime.fromtimestamp(now, tz).date()
    return today if report_instant(today, hhmm, tz) <= now else today - timedelta(days=1)


# ----------------------------------------------------------------- pure computations


@dataclass(frozen=True, slots=True)
class AlarmAt:
    """An alarm as it was at one instant, rebuilt from its timeline."""

    state: str  # active | cleared | closed
    acked_by: str | None
    acked_at: float | None
    severity: str
    top_severity: str  # the highest it had reached by then


def _higher(a: str | None, b: str) -> str:
    return b if a is None or _RANK.get(b, 0) > _RANK.get(a, 0) else a


def alarm_at(row: AlarmRow, t: float) -> AlarmAt | None:
    """The alarm's state at `t`, or None if it had not been raised yet.

    The row only holds the latest state (a return to alarm keeps the old `acked_by`, for
    instance), so the lifecycle entries are replayed: what the report says about a past
    instant does not change when the alarm changes later.
    """
    if row.raised_at > t:
        return None
    state: str | None = None
    acked_by: str | None = None
    acked_at: float | None = None
    severity: str | None = None
    top: str | None = None
    for e in row.events:
        if e.at > t:
            break
        if e.action in (Action.RAISED, Action.RETURNED, Action.REPEATED):
            state, acked_by, acked_at = AlarmState.ACTIVE.value, None, None
        elif e.action == Action.ESCALATED:
            if (
                severity is not None
                and e.severity is not None
                and _higher(severity, e.severity) != severity
            ):
                acked_by, acked_at = None, None  # got worse: must be acknowledged again
        elif e.action == Action.CLEARED:
            state = AlarmState.CLEARED.value
        elif e.action == Action.ACKED:
            acked_by, acked_at = e.actor, e.at
        elif e.action == Action.CLOSED:
            state = AlarmState.CLOSED.value
            if acked_by is None:  # closing acknowledges too
                acked_by, acked_at = e.actor, e.at
        if e.severity is not None:
            severity = e.severity
            top = _higher(top, e.severity)
    if state is None or severity is None:
        return _alarm_at_from_row(row, t)
    return AlarmAt(state, acked_by, acked_at, severity, top or severity)


def _alarm_at_from_row(row: AlarmRow, t: float) -> AlarmAt:
    """Without a timeline: the row's timestamps are all there is."""
    if row.closed_at is not None and row.closed_at <= t:
        state = AlarmState.CLOSED.value
    elif row.cleared_at is not None and row.cleared_at <= t:
        state = AlarmState.CLEARED.value
    else:
        state = AlarmState.ACTIVE.value
    acked = row.acked_at is not None and row.acked_at <= t
    return AlarmAt(
        state,
        row.acked_by if acked else None,
        row.acked_at if acked else None,
        row.severity,
        row.severity,
    )


def active_spans(row: AlarmRow) -> list[tuple[float, float]]:
    """The intervals during which the alarm's condition was present (end inf: still is).

    From the timeline: raised/returned start one, cleared/closed end it. A device_offline
    alarm that cleared and came back is one row but two spans.
    """
    spans: list[tuple[float, float]] = []
    begin: float | None = None
    for e in row.events:
        if e.action in (Action.RAISED, Action.RETURNED, Action.REPEATED):
            if begin is None:
                begin = e.at
        elif e.action in (Action.CLEARED, Action.CLOSED) and begin is not None:
            spans.append((begin, e.at))
            begin = None
    if begin is not None:
        spans.append((begin, math.inf))
    if not row.events:
        end = row.cleared_at if row.cleared_at is not None else row.closed_at
        spans.append((row.raised_at, end if end is not None else math.inf))
    return spans


def covered_seconds(spans: Iterable[tuple[float, float]], start: float, end: float) -> float:
    """Length of the union of `spans` within [start, end]."""
    total = 0.0
    reach = start
    for begin, finish in sorted(spans):
        a, b = max(begin, reach), min(finish, end)
        if b > a:
            total += b - a
            reach = b
    return total


def _spans_by_device(
    alarms: Iterable[AlarmRow], alarm_type: str
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in alarms:
        if row.type == alarm_type:
            out.setdefault((row.site, row.device), []).extend(active_spans(row))
    return out


def _present_at(spans: Iterable[tuple[float, float]], t: float) -> bool:
    return any(a <= t < b for a, b in spans)


def status_from_alarms(alarms: Sequence[AlarmRow], device: DeviceInfo, now: float) -> str:
    """A device's status told by the store alone (no running engine): the engine raises
    device_offline for a device silent past its stale window, counted from start-up, so
    no offline alarm means it was heard."""
    mine = [a for a in alarms if a.site == device.site and a.device == device.device]
    if _present_at(_spans_by_device(mine, AlarmType.DEVICE_OFFLINE).get(_key(device), []), now):
        return "offline"
    if _present_at(_spans_by_device(mine, AlarmType.DEVICE_FAULT).get(_key(device), []), now):
        return "fault"
    return "online"


def status_from_engine(status: DeviceStatus) -> str:
    """The same mapping as the API's device view (gateway/views.py)."""
    if not status.online:
        return "offline"
    if status.last_seen is None:
        return "unknown"  # not heard from since start-up, not yet overdue
    if status.fault:
        return "fault"
    return "online"


def _key(d: DeviceInfo) -> tuple[str, str]:
    return d.site, d.device


def _counts(keys: Sequence[str], found: Iterable[str]) -> Counts:
    tally: dict[str, int] = dict.fromkeys(keys, 0)
    for k in found:
        tally[k] = tally.get(k, 0) + 1  # a key we do not know (newer type) still counts
    return tuple(tally.items())


def _sum_counts(all_counts: Iterable[Counts]) -> Counts:
    tally: dict[str, int] = {}
    for counts in all_counts:
        for k, n in counts:
            tally[k] = tally.get(k, 0) + n
    return tuple(tally.items())


def raised_in_period(
    alarms: Iterable[AlarmRow], period: Period
) -> tuple[int, Counts, Counts, Counts]:
    """(total, by type, by highest severity, by disposition) of alarms raised in the period.

    Severity is the highest the alarm reached by the report time (a pre-alarm that became
    a level-1 gas alarm counts as critical); disposition is the one it was closed with, or
    "open" if it was not closed by the report time.
    """
    types: list[str] = []
    severities: list[str] = []
    dispositions: list[str] = []
    for row in alarms:
        if not period.start <= row.raised_at < period.end or row.raised_at > period.as_of:
            continue
        at = alarm_at(row, period.as_of)
        assert at is not None
        types.append(row.type)
        severities.append(at.top_severity)
        closed = at.state == AlarmState.CLOSED and row.disposition is not None
        dispositions.append(row.disposition if closed and row.disposition else OPEN)
    return (
        len(types),
        _counts(TYPE_KEYS, types),
        _counts(SEVERITY_KEYS, severities),
        _counts(DISPOSITION_KEYS, dispositions),
    )


def open_alarms_at(
    alarms: Iterable[AlarmRow], t: float, locations: Mapping[tuple[str, str], str]
) -> list[OpenAlarm]:
    """Alarms not closed at `t`, raised at any time before it: most severe, then oldest first."""
    out: list[OpenAlarm] = []
    for row in alarms:
        at = alarm_at(row, t)
        if at is None or at.state == AlarmState.CLOSED:
            continue
        out.append(
            OpenAlarm(
                id=row.id,
                site=row.site,
                device=row.device,
                location=locations.get((row.site, row.device), ""),
                type=row.type,
                severity=at.severity,
                state=at.state,
                acked_by=at.acked_by,
                acked_at=at.acked_at,
                raised_at=row.raised_at,
                age_h=round((t - row.raised_at) / 3600, 2),
            )
        )
    out.sort(key=lambda a: (-_RANK.get(a.severity, 0), a.raised_at, a.id))
    return out


def availability(
    devices: Sequence[DeviceInfo],
    alarms: Iterable[AlarmRow],
    period: Period,
    status_now: Mapping[tuple[str, str], str],
) -> tuple[list[DeviceAvailability], float | None]:
    """Per device online rate over the part of the period seen, and the site's (device-time
    weighted). Offline time is the union of the device's device_offline alarm spans."""
    spans = _spans_by_device(alarms, AlarmType.DEVICE_OFFLINE)
    covered = max(0.0, period.as_of - period.start)
    rows: list[DeviceAvailability] = []
    for d in devices:
        offline = covered_seconds(spans.get(_key(d), []), period.start, period.as_of)
        rows.append(
            DeviceAvailability(
                site=d.site,
                device=d.device,
                type=d.type,
                location=d.location,
                offline_s=round(offline, 3),
                covered_s=round(covered, 3),
                online_rate=round(1 - offline / covered, 6) if covered > 0 else None,
                status_now=status_now.get(_key(d), "unknown"),
            )
        )
    return rows, _weighted_rate(rows)


def _weighted_rate(rows: Iterable[DeviceAvailability]) -> float | None:
    seen = [r for r in rows if r.online_rate is not None]
    total = sum(r.covered_s for r in seen)
    if total <= 0:
        return None
    return round(1 - sum(r.offline_s for r in seen) / total, 6)


def actions_in_period(
    commands: Iterable[CommandRecord], period: Period, locations: Mapping[tuple[str, str], str]
) -> list[ActionRecord]:
    """Valve and trip commands sent in the period (by the rules or by a person)."""
    out = [
        ActionRecord(
            id=c.id,
            site=c.site,
            device=c.device,
            location=locations.get((c.site, c.device), ""),
            cmd=c.cmd,
            requested_by=c.requested_by,
            sent_at=c.sent_at,
            result=c.result if c.result_at is None or c.result_at <= period.as_of else None,
            result_at=c.result_at if c.result_at is None or c.result_at <= period.as_of else None,
            detail=c.detail,
            alarm_id=c.alarm_id,
        )
        for c in commands
        if c.cmd in ACTION_COMMANDS
        and period.start <= c.sent_at < period.end
        and c.sent_at <= period.as_of
    ]
    out.sort(key=lambda a: (a.sent_at, a.id))
    return out


def false_alarm_rates(
    alarms: Iterable[AlarmRow], period: Period, locations: Mapping[tuple[str, str], str]
) -> list[FalseAlarmRate]:
    """Per device: false_alarm dispositions / alarms closed in the period (closing is when
    a person decides what the alarm was). Only devices with closed alarms are listed."""
    closed: dict[tuple[str, str], list[AlarmRow]] = {}
    for row in alarms:
        at = row.closed_at
        if at is not None and period.start <= at < period.end and at <= period.as_of:
            closed.setdefault((row.site, row.device), []).append(row)
    out = []
    for (site, device), rows in closed.items():
        false = sum(1 for r in rows if r.disposition == Disposition.FALSE_ALARM)
        out.append(
            FalseAlarmRate(
                site=site,
                device=device,
                location=locations.get((site, device), ""),
                closed=len(rows),
                false_alarms=false,
                rate=round(false / len(rows), 6),
            )
        )
    out.sort(key=lambda r: (-r.rate, -r.closed, r.device))
    return out


def site_report(
    site: SiteConfig,
    devices: Sequence[DeviceInfo],
    alarms: Sequence[AlarmRow],
    commands: Sequence[CommandRecord],
    period: Period,
    status_now: Mapping[tuple[str, str], str],
) -> SiteReport:
    """One site's section, from that site's rows (pure)."""
    alarms = [a for a in alarms if a.site == site.id]
    commands = [c for c in commands if c.site == site.id]
    locations = {_key(d): d.location for d in devices}
    raised, by_type, by_severity, by_disposition = raised_in_period(alarms, period)
    devs, rate = availability(devices, alarms, period, status_now)
    rates = false_alarm_rates(alarms, period, locations)
    return SiteReport(
        site=site.id,
        name=site.name,
        kind=site.kind.value,
        devices=len(devices),
        raised=raised,
        by_type=by_type,
        by_severity=by_severity,
        by_disposition=by_disposition,
        open_alarms=tuple(open_alarms_at(alarms, period.as_of, locations)),
        availability=tuple(devs),
        online_rate=rate,
        offline_now=tuple(d.device for d in devs if d.status_now == "offline"),
        actions=tuple(actions_in_period(commands, period, locations)),
        false_alarm_rates=tuple(rates),
        closed=sum(r.closed for r in rates),
        false_alarms=sum(r.false_alarms for r in rates),
    )


def totals(sites: Sequence[SiteReport]) -> Totals:
    return Totals(
        sites=len(sites),
        devices=sum(s.devices for s in sites),
        raised=sum(s.raised for s in sites),
        by_type=_sum_counts(s.by_type for s in sites),
        by_severity=_sum_counts(s.by_severity for s in sites),
        by_disposition=_sum_counts(s.by_disposition for s in sites),
        open_alarms=sum(len(s.open_alarms) for s in sites),
        unacked_open=sum(s.unacked_open for s in sites),
        online_rate=_weighted_rate(d for s in sites for d in s.availability),
        offline_now=sum(len(s.offline_now) for s in sites),
        actions=sum(len(s.actions) for s in sites),
        closed=sum(s.closed for s in sites),
        false_alarms=sum(s.false_alarms for s in sites),
    )


def report_title(config: GatewayConfig, day: date, site: SiteConfig | None) -> str:
    if site is None:
        return f"{config.report.county} 民政服务机构安全日报 {day.isoformat()}"
    return f"{site.name} 安全日报 {day.isoformat()}"


def compose_report(
    config: GatewayConfig,
    sites: Sequence[SiteConfig],
    devices: Sequence[DeviceInfo],
    alarms: Sequence[AlarmRow],
    commands: Sequence[CommandRecord],
    period: Period,
    status_now: Mapping[tuple[str, str], str],
    *,
    county: bool,
    generated_at: float,
    status_source: Literal["engine", "alarms"],
) -> DailyReport:
    """The whole report from rows (pure): what `build_daily_report` calls after reading."""
    reports = tuple(
        site_report(s, [d for d in devices if d.site == s.id], alarms, commands, period, status_now)
        for s in sites
    )
    return DailyReport(
        scope="county" if county else "site",
        title=report_title(config, period.day, None if county else sites[0]),
        county=config.report.county,
        timezone=config.gateway.timezone,
        period=period,
        generated_at=generated_at,
        status_source=status_source,
        sites=reports,
        totals=totals(reports),
    )


def devices_of(inventory: Inventory, site_ids: Iterable[str]) -> list[DeviceInfo]:
    wanted = set(site_ids)
    return [
        DeviceInfo(d.ref.site, d.ref.device, d.type.value, d.config.location, d.config.name)
        for d in inventory
        if d.ref.site in wanted
    ]


# ------------------------------------------------------------------------------ reading


class ReadableStore(Protocol):
    """What the report needs of a store: its read connection (`AlarmStore` has it)."""

    @property
    def reader(self) -> aiosqlite.Connection: ...


def _marks(n: int) -> str:
    return ", ".join("?" * n)


async def read_alarms(
    db: aiosqlite.Connection, sites: Sequence[str], start: float, until: float
) -> list[AlarmRow]:
    """Alarms of `sites` raised by `until` and not closed before `start`, with their
    lifecycle entries: every alarm the period, the report time or "now" can concern."""
    where = (
        f"a.site IN ({_marks(len(sites))}) AND a.raised_at <= ? "
        "AND (a.closed_at IS NULL OR a.closed_at >= ?)"
    )
    args: list[Any] = [*sites, until, start]
    events: dict[str, list[LifecycleEntry]] = {}
    async with db.execute(
        "SELECT t.alarm_id, t.at, t.action, t.actor, t.severity FROM alarm_timeline t "
        f"JOIN alarms a ON a.id = t.alarm_id WHERE {where} "
        f"AND t.action IN ({_marks(len(_LIFECYCLE))}) ORDER BY t.alarm_id, t.seq",
        (*args, *_LIFECYCLE),
    ) as cur:
        for alarm_id, at, action, actor, severity in await cur.fetchall():
            events.setdefault(alarm_id, []).append(LifecycleEntry(at, action, actor, severity))
    async with db.execute(
        "SELECT a.id, a.site, a.device, a.type, a.severity, a.state, a.raised_at, a.acked_at, "
        "a.acked_by, a.cleared_at, a.closed_at, a.closed_by, a.disposition FROM alarms a "
        f"WHERE {where} ORDER BY a.raised_at, a.id",
        args,
    ) as cur:
        rows = await cur.fetchall()
    return [
        AlarmRow(
            id=r[0], site=r[1], device=r[2], type=r[3], severity=r[4], state=r[5],
            raised_at=r[6], acked_at=r[7], acked_by=r[8], cleared_at=r[9], closed_at=r[10],
            closed_by=r[11], disposition=r[12], events=tuple(events.get(r[0], ())),
        )
        for r in rows
    ]  # fmt: skip


async def read_commands(
    db: aiosqlite.Connection, sites: Sequence[str], start: float, end: float
) -> list[CommandRecord]:
    async with db.execute(
        "SELECT id, site, device, cmd, requested_by, alarm_id, reason, sent_at, result, "
        f"result_at, detail FROM commands WHERE site IN ({_marks(len(sites))}) "
        f"AND cmd IN ({_marks(len(ACTION_COMMANDS))}) AND sent_at >= ? AND sent_at < ? "
        "ORDER BY sent_at, id",
        (*sites, *ACTION_COMMANDS, start, end),
    ) as cur:
        return [CommandRecord(*row) for row in await cur.fetchall()]


async def build_daily_report(
    store: ReadableStore,
    config: GatewayConfig,
    inventory: Inventory,
    engine_status: Callable[[DeviceRef], DeviceStatus] | None,
    day: date,
    site: str | None,
    now: float,
) -> DailyReport:
    """The report for `day`: one site's, or the county's (`site` None) with every site.

    `now` bounds what it can see: a report asked for before the period ends covers the
    period so far (`period.complete` is false). Devices' "offline now" come from
    `engine_status` when given (the running gateway), else from the store's alarms.
    Raises UnknownSite, or PeriodNotStarted for a day whose period lies in the future.
    """
    tz = ZoneInfo(config.gateway.timezone)
    if site is None:
        sites = list(config.sites)
    else:
        found = next((s for s in config.sites if s.id == site), None)
        if found is None:
            raise UnknownSite(site)
        sites = [found]
    start, end = report_period(day, config.report.time, tz)
    if now < start:
        raise PeriodNotStarted(
            f"the report period for {day} starts at {Clockface(config.gateway.timezone).iso(start)}"
        )
    period = Period(day, start, end, min(end, now))
    ids = [s.id for s in sites]
    db = store.reader
    alarms = await read_alarms(db, ids, start, max(now, period.as_of))
    commands = await read_commands(db, ids, start, end)
    devices = devices_of(inventory, ids)
    if engine_status is not None:
        status_now = {
            _key(d): status_from_engine(engine_status(DeviceRef(d.site, d.device))) for d in devices
        }
    else:
        status_now = {_key(d): status_from_alarms(alarms, d, now) for d in devices}
    return compose_report(
        config,
        sites,
        devices,
        alarms,
        commands,
        period,
        status_now,
        county=site is None,
        generated_at=now,
        status_source="engine" if engine_status is not None else "alarms",
    )


# ------------------------------------------------------------------------------- JSON


def _pct(rate: float | None) -> str:
    return "未知" if rate is None else f"{rate * 100:.1f}%"


def report_json(report: DailyReport) -> dict[str, Any]:
    """The report as JSON: times ISO 8601 with the zone's offset, rates as fractions."""
    iso = Clockface(report.timezone).iso
    p = report.period
    t = report.totals
    return {
        "kind": "daily_safety_report",
        "scope": report.scope,
        "title": report.title,
        "county": report.county,
        "date": p.day.isoformat(),
        "timezone": report.timezone,
        "period": {
            "start": iso(p.start),
            "end": iso(p.end),
            "as_of": iso(p.as_of),
            "complete": p.complete,
        },
        "generated_at": iso(report.generated_at),
        "device_status_source": report.status_source,
        "totals": {
            "sites": t.sites,
            "devices": t.devices,
            "raised": t.raised,
            "by_type": dict(t.by_type),
            "by_severity": dict(t.by_severity),
            "by_disposition": dict(t.by_disposition),
            "open_alarms": t.open_alarms,
            "unacked_open_alarms": t.unacked_open,
            "online_rate": t.online_rate,
            "offline_now": t.offline_now,
            "actions": t.actions,
            "closed": t.closed,
            "false_alarms": t.false_alarms,
            "false_alarm_rate": _round(t.false_alarm_rate),
        },
        "sites": [_site_json(s, iso) for s in report.sites],
    }


def _round(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 6)


def _site_json(s: SiteReport, iso: Callable[[float | None], str | None]) -> dict[str, Any]:
    return {
        "site": s.site,
        "name": s.name,
        "kind": s.kind,
        "devices": s.devices,
        "alarms": {
            "raised": s.raised,
            "by_type": dict(s.by_type),
            "by_severity": dict(s.by_severity),
            "by_disposition": dict(s.by_disposition),
        },
        "open_alarms": [
            {
                "id": a.id,
                "device": a.device,
                "location": a.location,
                "type": a.type,
                "severity": a.severity,
                "state": a.state,
                "acked_by": a.acked_by,
                "acked_at": iso(a.acked_at),
                "raised_at": iso(a.raised_at),
                "age_h": a.age_h,
            }
            for a in s.open_alarms
        ],
        "availability": {
            "online_rate": s.online_rate,
            "offline_now": list(s.offline_now),
            "devices": [
                {
                    "device": d.device,
                    "type": d.type,
                    "location": d.location,
                    "online_rate": d.online_rate,
                    "offline_s": d.offline_s,
                    "status_now": d.status_now,
                }
                for d in s.availability
            ],
        },
        "actions": [
            {
                "id": a.id,
                "device": a.device,
                "location": a.location,
                "cmd": a.cmd,
                "requested_by": a.requested_by,
                "sent_at": iso(a.sent_at),
                "result": a.result,
                "result_at": iso(a.result_at),
                "detail": a.detail,
                "alarm_id": a.alarm_id,
            }
            for a in s.actions
        ],
        "false_alarms": {
            "closed": s.closed,
            "false_alarms": s.false_alarms,
            "rate": _round(s.false_alarm_rate),
            "devices": [
                {
                    "device": r.device,
                    "location": r.location,
                    "closed": r.closed,
                    "false_alarms": r.false_alarms,
                    "rate": r.rate,
                }
                for r in s.false_alarm_rates
            ],
        },
    }


# ------------------------------------------------------------------------------- HTML

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


def _time_text(ts: float | None, tz: ZoneInfo) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")


def render_html(report: DailyReport) -> str:
    """A printable Chinese page: no scripts, no external resources, CSS inline."""
    tz = ZoneInfo(report.timezone)
    p = report.period
    meta = (
        f"统计时段：{_time_text(p.start, tz)} 至 {_time_text(p.end, tz)}（{report.timezone}）"
        f"　生成时间：{_time_text(report.generated_at, tz)}"
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
            f'<p class="meta warn">统计时段尚未结束：数据截至 {_e(_time_text(p.as_of, tz))}</p>'
        )
    if report.scope == "county":
        parts.append(_summary_html(report))
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
            _label(SITE_KIND_LABELS, s.kind),
            s.devices,
            _pct(s.online_rate),
            len(s.offline_now),
            s.raised,
            dict(s.by_severity).get("critical", 0),
            len(s.open_alarms),
            s.unacked_open,
            len(s.actions),
            _pct(s.false_alarm_rate),
        ]
        for s in report.sites
    ]
    rows.append(
        [
            f"合计（{t.sites}家）",
            "",
            t.devices,
            _pct(t.online_rate),
            t.offline_now,
            t.raised,
            dict(t.by_severity).get("critical", 0),
            t.open_alarms,
            t.unacked_open,
            t.actions,
            _pct(t.false_alarm_rate),
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
        _table([title, "数量"], [[_label(labels, k), n] for k, n in counts if n], {1})
        for title, counts, labels in (
            ("报警类型", by_type, ALARM_TYPE_LABELS),
            ("报警级别", by_severity, SEVERITY_LABEL_MAP),
            ("处置结果", by_disposition, DISPOSITION_LABELS),
        )
    ]
    return '<div class="counts">' + "".join(tables) + "</div>"


def _site_html(s: SiteReport, report: DailyReport, tz: ZoneInfo) -> str:
    heading = f"{s.name}（{_label(SITE_KIND_LABELS, s.kind)}）"
    out = [f'<section class="site"><h2>{_e(heading)}</h2>']
    out.append(
        f"<p>本时段报警 <b>{s.raised}</b> 起；截至报告时未关闭报警 "
        f'<b class="{"warn" if s.open_alarms else ""}">{len(s.open_alarms)}</b> 起'
        f"（其中未确认 {s.unacked_open} 起）；设备在线率 <b>{_e(_pct(s.online_rate))}</b>，"
        f"当前离线 {len(s.offline_now)} 台；阀门与脱扣操作 {len(s.actions)} 次。</p>"
    )
    out.append("<h3>一、本时段报警统计</h3>")
    if s.raised:
        out.append(_counts_block(s.by_type, s.by_severity, s.by_disposition))
    else:
        out.append(_none("本时段无报警。"))
    out.append(f"<h3>二、未关闭报警（截至 {_e(_time_text(report.period.as_of, tz))}）</h3>")
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
                        _open_state_label(a),
                        _time_text(a.raised_at, tz),
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
                        _label(DEVICE_TYPE_LABELS, d.type),
                        _pct(d.online_rate),
                        f"{d.offline_s / 3600:.1f}",
                        _label(DEVICE_STATUS_LABELS, d.status_now),
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
                        _time_text(a.sent_at, tz),
                        a.location,
                        a.device,
                        _label(COMMAND_LABELS, a.cmd),
                        _actor(a.requested_by),
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
                    [r.location, r.device, r.closed, r.false_alarms, _pct(r.rate)]
                    for r in s.false_alarm_rates
                ],
                {2, 3, 4},
            )
        )
    else:
        out.append(_none("本时段无关闭的报警。"))
    out.append("</section>")
    return "".join(out)


def _open_state_label(a: OpenAlarm) -> str:
    if a.state == AlarmState.ACTIVE and a.acked_by is not None:
        return STATE_LABELS["acked"]
    return _label(STATE_LABELS, a.state)


def _result_label(a: ActionRecord) -> str:
    text = RESULT_LABELS.get(a.result, a.result) if a.result else NO_RESULT
    return f"{text}（{a.detail}）" if a.detail else text


# ------------------------------------------------------------------------------- XLSX

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


def _sheet(
    ws: Worksheet,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    formats: Mapping[int, str] | None = None,
) -> None:
    """Bold header row (frozen), data rows with number formats, widths from the content."""
    ws.append(list(headers))
    for cell in ws[1]:
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="center")
    widths = [_width(h) for h in headers]
    for row in rows:
        ws.append(list(row))
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
    """The report as a workbook: 汇总, 未关闭报警, 设备在线率, 阀门与脱扣操作, 误报率."""
    tz = ZoneInfo(report.timezone)
    wb = Workbook()
    # Fixed document times: the same report gives the same file.
    wb.properties.created = wb.properties.modified = _local(report.generated_at, tz)
    wb.properties.title = report.title
    summary = wb.active
    assert summary is not None
    summary.title = "汇总"
    _summary_sheet(summary, report)
    _sheet(
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
                _open_state_label(a),
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
    _sheet(
        wb.create_sheet("设备在线率"),
        ["机构", "位置", "设备", "设备类型", "在线率", "离线时长(小时)", "当前状态"],
        [
            [
                s.name,
                d.location,
                d.device,
                _label(DEVICE_TYPE_LABELS, d.type),
                d.online_rate,
                round(d.offline_s / 3600, 2),
                _label(DEVICE_STATUS_LABELS, d.status_now),
            ]
            for s in report.sites
            for d in s.availability
        ],
        {4: _PERCENT, 5: "0.00"},
    )
    _sheet(
        wb.create_sheet("阀门与脱扣操作"),
        ["时间", "机构", "位置", "设备", "操作", "发起人", "结果", "结果时间", "说明", "关联报警"],
        [
            [
                _local(a.sent_at, tz),
                s.name,
                a.location,
                a.device,
                _label(COMMAND_LABELS, a.cmd),
                _actor(a.requested_by),
                RESULT_LABELS.get(a.result, a.result) if a.result else NO_RESULT,
                _local(a.result_at, tz),
                a.detail,
                a.alarm_id,
            ]
            for s in report.sites
            for a in s.actions
        ],
    )
    _sheet(
        wb.create_sheet("误报率"),
        ["机构", "位置", "设备", "关闭报警数", "误报数", "误报率"],
        [
            [s.name, r.location, r.device, r.closed, r.false_alarms, r.rate]
            for s in report.sites
            for r in s.false_alarm_rates
        ],
        {5: _PERCENT},
    )
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
                _round(t.false_alarm_rate),
            ]
        )
    _sheet(ws, SUMMARY_HEADERS, rows, {3: _PERCENT, len(SUMMARY_HEADERS) - 1: _PERCENT})
    if report.scope == "county":
        for cell in ws[ws.max_row]:
            cell.font = _BOLD
    # Below the table, what it covers: read by people, ignored by anything parsing row 1.
    ws.append([])
    ws.append(
        [
            "统计时段",
            f"{_time_text(report.period.start, tz)} 至 {_time_text(report.period.end, tz)}",
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
        _label(SITE_KIND_LABELS, s.kind),
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
        _round(s.false_alarm_rate),
    ]


# ------------------------------------------------------------------------------- mail


def attachment_name(report: DailyReport) -> str:
    """Chinese, as people file them (RFC 2231 encodes it in the mail)."""
    return f"{report.title.replace(' ', '_')}.xlsx"


def _text_summary(report: DailyReport) -> str:
    """The plain-text part, for mail readers that do not show HTML."""
    tz = ZoneInfo(report.timezone)
    p = report.period
    t = report.totals
    lines = [
        report.title,
        f"统计时段：{_time_text(p.start, tz)} 至 {_time_text(p.end, tz)}（{report.timezone}）",
        "",
    ]
    for s in report.sites:
        lines.append(
            f"{s.name}：报警 {s.raised} 起，未关闭 {len(s.open_alarms)} 起"
            f"（未确认 {s.unacked_open}），"
            f"在线率 {_pct(s.online_rate)}，当前离线 {len(s.offline_now)} 台，"
            f"阀门与脱扣操作 {len(s.actions)} 次"
        )
    if report.scope == "county":
        lines.append(
            f"合计：{t.sites} 家机构，报警 {t.raised} 起，未关闭 {t.open_alarms} 起，"
            f"在线率 {_pct(t.online_rate)}，当前离线 {t.offline_now} 台"
        )
    lines += ["", "详见附件表格。"]
    return "\n".join(lines) + "\n"


def build_report_mail(
    report: DailyReport, sender: str, to: ReportRecipient, html_body: str, xlsx: bytes
) -> EmailMessage:
    """text/plain + text/html alternatives, the workbook attached."""
    mail = EmailMessage()  # the default policy RFC 2047-encodes the Chinese subject and name
    mail["From"] = sender
    mail["To"] = email.utils.formataddr((to.name, to.email))
    mail["Subject"] = report.title
    mail["Date"] = email.utils.formatdate(report.generated_at, localtime=True)
    mail["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    mail.set_content(_text_summary(report), charset="utf-8")
    mail.add_alternative(html_body, subtype="html", charset="utf-8")
    maintype, subtype = XLSX_MIME.split("/")
    mail.add_attachment(xlsx, maintype=maintype, subtype=subtype, filename=attachment_name(report))
    return mail


class ReportSender(Protocol):
    """Sends one mail; never raises for delivery trouble (a `SendResult` says what happened)."""

    @property
    def address(self) -> str: ...

    async def send(self, mail: EmailMessage) -> SendResult: ...


class SmtpReportSender:
    """The report's channel: an smtp channel of `notify.channels` (one session per mail)."""

    def __init__(self, channel: SmtpChannel, password: str | None, timeout: float = 60.0) -> None:
        self._channel = channel
        self._password = password
        self._timeout = timeout

    @classmethod
    def from_config(cls, config: GatewayConfig) -> SmtpReportSender | None:
        name = config.report.mail_channel
        channel = next(
            (c for c in config.notify.channels if c.name == name and isinstance(c, SmtpChannel)),
            None,
        )
        if channel is None:
            return None
        password = os.environ.get(channel.password_env) if channel.password_env else None
        return cls(channel, password)

    @property
    def address(self) -> str:
        return self._channel.sender

    async def send(self, mail: EmailMessage) -> SendResult:
        to = email.utils.getaddresses([str(mail["To"])])[0][1]
        try:
            errors, reply = await aiosmtplib.send(
                mail,
                hostname=self._channel.host,
                port=self._channel.port,
                username=self._channel.username,
                password=self._password,
                start_tls=self._channel.starttls,  # False, not None: see notify/mail.py
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPException as exc:
            return _smtp_failure(exc)
        except OSError as exc:  # DNS failure, unreachable network
            return SendResult(False, True, f"{type(exc).__name__}: {exc}")
        if to in errors:
            refused = errors[to]
            return SendResult(False, 400 <= refused.code < 500, f"refused: {refused}")
        return SendResult(True, False, reply, str(mail["Message-ID"]))


@dataclass(frozen=True, slots=True)
class Delivery:
    """One mail of one day: a recipient and the report they get (site id, or None: county)."""

    recipient: ReportRecipient
    site: str | None

    @property
    def key(self) -> str:
        return f"{self.site or '*county*'}|{self.recipient.email}"


def deliveries(config: GatewayConfig) -> list[Delivery]:
    """The county report to a recipient without sites, else one report per listed site."""
    out: list[Delivery] = []
    for r in config.report.recipients:
        if not r.sites:
            out.append(Delivery(r, None))
        else:
            out += [Delivery(r, s) for s in r.sites]
    return out


class ReportState:
    """`report_state.json` under data_dir: the last day fully sent, what of the current day
    has gone out (a restart part-way sends only the rest), and recent failures."""

    MAX_FAILURES = 100

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_day: str | None = None
        self.day: str | None = None
        self.delivered: set[str] = set()
        self.failures: list[dict[str, Any]] = []
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # Losing the state risks one repeated report; refusing to start would lose all.
            log.error("report state %s unreadable (%s); starting afresh", self.path, exc)
            return
        if isinstance(data, dict):
            self.last_day = data.get("last_day")
            self.day = data.get("day")
            self.delivered = set(data.get("delivered") or [])
            self.failures = list(data.get("failures") or [])

    def save(self) -> None:
        data = {
            "last_day": self.last_day,
            "day": self.day,
            "delivered": sorted(self.delivered),
            "failures": self.failures[-self.MAX_FAILURES :],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)  # a crash mid-write leaves the old state, never half a file

    def sent(self, day: date) -> bool:
        return self.last_day is not None and self.last_day >= day.isoformat()

    def begin(self, day: date) -> None:
        if self.day != day.isoformat():
            self.day = day.isoformat()
            self.delivered = set()


class ReportMailer:
    """Mails the daily reports at the configured time, once per day.

    The loop sleeps until the next report time by polling the (injectable) clock every
    `poll_s`, so it follows a wall clock that is set late (a gateway that booted without
    network time) and tests with a fake clock run in real milliseconds. A gateway that was
    down at the report time sends that day's reports when it comes back, the same day
    before midnight; a later day's start only logs the missed day (a report of yesterday
    arriving tomorrow is not the daily report the bureau asked for).
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: ReadableStore,
        inventory: Inventory,
        sender: ReportSender,
        *,
        engine_status: Callable[[DeviceRef], DeviceStatus] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_s: float = 30.0,
        attempts: int = 5,
        retry_backoff_s: float = 30.0,  # doubling: 30 s .. 4 min, all within the 15:00 deadline
        state_path: Path | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._inventory = inventory
        self._sender = sender
        self._engine_status = engine_status
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._attempts = attempts
        self._backoff = retry_backoff_s
        self._tz = ZoneInfo(config.gateway.timezone)
        self.state = ReportState(state_path or Path(config.gateway.data_dir) / STATE_FILE)

    @classmethod
    def from_gateway(cls, gw: Gateway) -> ReportMailer | None:
        """The mailer of a running gateway, or None when no report is to be mailed."""
        sender = SmtpReportSender.from_config(gw.config)
        if sender is None or not gw.config.report.recipients:
            return None
        return cls(
            gw.config,
            gw.store,
            gw.inventory,
            sender,
            engine_status=gw.engine.status,
            clock=gw.clock,
        )

    async def run(self) -> None:
        hhmm = self._config.report.time
        while True:
            now = self._clock()
            await self.send_due(now)
            await self._sleep_until(next_report_time(now, hhmm, self._tz))

    async def _sleep_until(self, due: float) -> None:
        while (left := due - self._clock()) > 0:
            await self._sleep(min(left, self._poll_s))

    async def send_due(self, now: float) -> date | None:
        """Send the latest day's reports if due today and not yet sent; returns the day sent."""
        day = latest_report_day(now, self._config.report.time, self._tz)
        if self.state.sent(day):
            return None
        if day != datetime.fromtimestamp(now, self._tz).date():
            if self.state.last_day is not None:  # a first start is not a missed report
                log.error(
                    "daily report for %s was not mailed: the gateway was not running "
                    "between %s and midnight that day",
                    day,
                    self._config.report.time,
                )
            return None
        await self.send_day(day)
        return day

    async def send_day(self, day: date) -> None:
        self.state.begin(day)
        todo = [d for d in deliveries(self._config) if d.key not in self.state.delivered]
        reports: dict[str | None, tuple[DailyReport, str, bytes] | None] = {}
        for site in dict.fromkeys(d.site for d in todo):
            reports[site] = await self._render(day, site)
        await asyncio.gather(*(self._deliver(day, d, reports[d.site]) for d in todo))
        self.state.last_day = day.isoformat()
        self.state.save()

    async def _render(self, day: date, site: str | None) -> tuple[DailyReport, str, bytes] | None:
        for attempt in range(1, self._attempts + 1):
            try:
                report = await build_daily_report(
                    self._store,
                    self._config,
                    self._inventory,
                    self._engine_status,
                    day,
                    site,
                    self._clock(),
                )
                return report, render_html(report), render_xlsx(report)
            except Exception:  # a locked or failing disk: retried, then recorded
                log.exception(
                    "daily report for %s (%s): build failed (attempt %d)",
                    day,
                    site or "county",
                    attempt,
                )
            if attempt < self._attempts:
                await self._sleep(self._backoff * 2 ** (attempt - 1))
        return None

    async def _deliver(
        self, day: date, delivery: Delivery, rendered: tuple[DailyReport, str, bytes] | None
    ) -> None:
        to = delivery.recipient
        result = SendResult(False, False, "the report could not be built")
        for attempt in range(1, self._attempts + 1):
            if rendered is None:
                break
            report, html_body, xlsx = rendered
            mail = build_report_mail(report, self._sender.address, to, html_body, xlsx)
            try:
                result = await self._sender.send(mail)
            except Exception as exc:  # noqa: BLE001 - a sender that raises is one failed attempt
                result = SendResult(False, True, f"{type(exc).__name__}: {exc}")
            if result.ok:
                log.info("daily report %s mailed to %s <%s>", report.title, to.name, to.email)
                self.state.delivered.add(delivery.key)
                self.state.save()
                return
            log.warning(
                "daily report for %s to %s (attempt %d/%d): %s",
                day, to.email, attempt, self._attempts, result.detail,
            )  # fmt: skip
            if not result.recoverable or attempt == self._attempts:
                break
            await self._sleep(self._backoff * 2 ** (attempt - 1))
        log.error(
            "daily report for %s (%s) could not be mailed to %s <%s>: %s",
            day, delivery.site or "county", to.name, to.email, result.detail,
        )  # fmt: skip
        self.state.failures.append(
            {
                "day": day.isoformat(),
                "site": delivery.site,
                "to": to.email,
                "error": result.detail,
                "at": Clockface(self._config.gateway.timezone).iso(self._clock()),
            }
        )
        self.state.save()


# -------------------------------------------------------------------------------- HTTP


def _error(status: int, error: str, detail: Any = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _content_disposition(report: DailyReport, ext: str) -> str:
    ascii_name = f"{report.stem}.{ext}"
    utf8_name = quote(f"{report.title.replace(' ', '_')}.{ext}")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"


def register_report_routes(app: FastAPI) -> None:
    """`GET /api/reports/daily?date=YYYY-MM-DD&site=&format=json|html|xlsx`.

    Default date: the latest complete period. A duty token reads only its sites; the
    county report (no `site`) needs a token that reads every site (admin, bureau).
    """
    # Imported here: gateway.api imports this module to call this function.
    from gateway.api import ApiError, Principal, _principal

    @app.get("/api/reports/daily", response_model=None)
    async def daily_report(
        request: Request,
        day_text: str | None = Query(None, alias="date", description="YYYY-MM-DD"),
        site: str | None = None,
        fmt: str = Query("json", alias="format", description="json, html or xlsx"),
    ) -> Response:
        try:
            who: Principal = _principal(request)
        except ApiError as exc:
            return _error(exc.status, exc.error, exc.detail)
        gw: Gateway = request.app.state.gateway
        now = gw.clock()
        tz = ZoneInfo(gw.config.gateway.timezone)
        if fmt not in ("json", "html", "xlsx"):
            return _error(422, "invalid request", "format: one of json, html, xlsx")
        if day_text is None:
            day = latest_report_day(now, gw.config.report.time, tz)
        else:
            parsed = _parse_day(day_text)
            if parsed is None:
                return _error(
                    422, "invalid request", f"date: expected YYYY-MM-DD, got {day_text!r}"
                )
            day = parsed
        if site is not None:
            if site not in gw.inventory.sites or not who.may_read(site):
                return _error(404, "unknown site", site)
        elif who.sites is not None:
            return _error(
                403, "not allowed", f"{who.name} may read only some sites: ask for one with ?site="
            )
        try:
            report = await build_daily_report(
                gw.store, gw.config, gw.inventory, gw.engine.status, day, site, now
            )
        except PeriodNotStarted as exc:
            return _error(422, "invalid request", f"date: {exc}")
        except UnknownSite:
            return _error(404, "unknown site", site)
        if fmt == "html":
            return HTMLResponse(render_html(report))
        if fmt == "xlsx":
            return Response(
                render_xlsx(report),
                media_type=XLSX_MIME,
                headers={"content-disposition": _content_disposition(report, "xlsx")},
            )
        return JSONResponse(report_json(report))


def _parse_day(raw: str) -> date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


# --------------------------------------------------------------------------------- CLI


class _ReadOnlyStore:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @property
    def reader(self) -> aiosqlite.Connection:
        return self._conn


async def write_report_files(
    config_path: Path, day: date, out_dir: Path, site: str | None
) -> list[Path]:
    """`safety-gateway report daily`: the report for `day` as <stem>.json, .html, .xlsx.

    Reads the store of the config's data_dir read-only (the gateway may be running or not;
    "offline now" then comes from the store's alarms). Raises ConfigError,
    FileNotFoundError (no store yet), UnknownSite or PeriodNotStarted.
    """
    config = load_config(config_path)
    db_path = Path(config.gateway.data_dir) / "alarms.sqlite3"
    if not db_path.exists():
        raise FileNotFoundError(f"no alarm store at {db_path}")
    conn = await aiosqlite.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        report = await build_daily_report(
            _ReadOnlyStore(conn), config, Inventory(config), None, day, site, time.time()
        )
    finally:
        await conn.close()
    return await asyncio.to_thread(_write_files, report, out_dir)


def _write_files(report: DailyReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{report.stem}.{ext}" for ext in ("json", "html", "xlsx")]
    paths[0].write_text(
        json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    paths[1].write_text(render_html(report), encoding="utf-8")
    paths[2].write_bytes(render_xlsx(report))
    return paths


__all__ = [
    "DailyReport",
    "PeriodNotStarted",
    "ReportMailer",
    "SmtpReportSender",
    "UnknownSite",
    "build_daily_report",
    "next_report_time",
    "register_report_routes",
    "render_html",
    "render_xlsx",
    "report_json",
    "write_report_files",
]
