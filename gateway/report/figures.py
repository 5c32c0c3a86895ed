"""The report's figures, computed by pure functions from the store's rows (no I/O, no clock):
an alarm's state at an instant replayed from its timeline, the counts, open alarms, actions
and false-alarm rates of a period, and the report put together. Online rates and device
status are `gateway.status`'s, shared with the bureau overview."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from gateway.actuate.wire import CommandRecord
from gateway.alarms.book import Action, AlarmState, Disposition
from gateway.alarms.rows import AlarmRow
from gateway.audit import SYSTEM, AuditRecord
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig, SiteConfig
from gateway.duty.model import DailyCheck, Standing, board, parse_hhmm
from gateway.hazards.model import Hazard, HazardEvent, HazardLevel, HazardStatus, overdue
from gateway.incidents.model import Deadlines, Incident, PhoneReport, WrittenReport, clocks
from gateway.report.model import (
    ACTION_COMMANDS,
    DISPOSITION_KEYS,
    OPEN,
    SEVERITY_KEYS,
    SEVERITY_RANK,
    TYPE_KEYS,
    ActionRecord,
    CheckLine,
    CheckStanding,
    Counts,
    DailyReport,
    DeviceAvailability,
    DeviceInfo,
    FalseAlarmRate,
    HazardChange,
    HazardLedger,
    HumanAction,
    IncidentLine,
    OpenAlarm,
    Period,
    SelfReport,
    SiteReport,
    Totals,
)
from gateway.status.availability import Availability, intervals_by_device
from gateway.status.availability import availability as online_time
from gateway.status.device import DeviceState
from rules.model import AlarmType


@dataclass(frozen=True, slots=True)
class AlarmAt:
    """An alarm as it was at one instant, rebuilt from its timeline."""

    state: str  # active | cleared | closed
    acked_by: str | None
    acked_at: float | None
    severity: str
    top_severity: str  # the highest it had reached by then


def _higher(a: str | None, b: str) -> str:
    return b if a is None or SEVERITY_RANK.get(b, 0) > SEVERITY_RANK.get(a, 0) else a


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


def device_key(d: DeviceInfo) -> tuple[str, str]:
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
    out.sort(key=lambda a: (-SEVERITY_RANK.get(a.severity, 0), a.raised_at, a.id))
    return out


def availability(
    devices: Sequence[DeviceInfo],
    alarms: Iterable[AlarmRow],
    period: Period,
    status_now: Mapping[tuple[str, str], str],
) -> tuple[list[DeviceAvailability], float | None]:
    """Per device online rate over the part of the period seen, and the site's (device-time
    weighted). Offline time is the union of the device's device_offline alarm intervals,
    computed as the bureau overview does (`gateway.status.availability`)."""
    offline = intervals_by_device(alarms, AlarmType.DEVICE_OFFLINE.value, math.inf)
    rows: list[DeviceAvailability] = []
    for d in devices:
        seen = online_time([device_key(d)], offline, period.start, period.as_of)
        rows.append(
            DeviceAvailability(
                site=d.site,
                device=d.device,
                type=d.type,
                location=d.location,
                offline_s=round(seen.offline_s, 3),
                covered_s=round(seen.device_s, 3),
                online_rate=_rounded(seen.fraction),
                status_now=status_now.get(device_key(d), DeviceState.UNKNOWN.value),
            )
        )
    return rows, _weighted_rate(rows)


def _rounded(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction, 6)


def _weighted_rate(rows: Iterable[DeviceAvailability]) -> float | None:
    seen = [Availability(r.covered_s, r.offline_s) for r in rows if r.online_rate is not None]
    return _rounded(sum(seen, Availability()).fraction)


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


def human_actions_in_period(
    records: Iterable[AuditRecord], site: str, period: Period
) -> list[HumanAction]:
    """What people did at `site` in the period (up to the report time), oldest first; what
    the system did itself is in the other sections already."""
    out = [
        HumanAction(
            seq=r.seq,
            at=r.at,
            actor=r.actor,
            actor_name=r.actor_name,
            role=r.role,
            action=r.action,
            target=r.target,
            result=r.result,
            detail="；".join(f"{k}: {v}" for k, v in r.detail.items()) if r.detail else None,
        )
        for r in records
        if r.site == site
        and r.actor != SYSTEM
        and period.start <= r.at < period.end
        and r.at <= period.as_of
    ]
    out.sort(key=lambda a: (a.at, a.seq))
    return out


# ------------------------------------------------------------------ the closed loop
NOT_READ = "not read"


@dataclass(frozen=True, slots=True)
class LoopRows:
    """What the reader found of the closed loop for the report's sites: the rows, or why a
    database could not be read (then its rows are empty and its sections say so). Left at
    its defaults, nothing was read, and the report says that rather than "none"."""

    incidents: Sequence[Incident] = ()
    checks: Mapping[str, DailyCheck] = field(default_factory=dict)
    check_day: date | None = None
    ledger: Sequence[tuple[Hazard, Sequence[HazardEvent]]] = ()
    incidents_unreadable: str | None = NOT_READ
    duty_unreadable: str | None = NOT_READ
    hazards_unreadable: str | None = NOT_READ


def check_day_in_period(period: Period, due: time, tz: ZoneInfo) -> date:
    """The day whose self-report falls due inside the period: with the default 14:30 report
    and 15:00 due time, the day before the report's date, so that the report judges a
    deadline that has passed rather than one half an hour away."""
    end = datetime.fromtimestamp(period.end, tz)
    day = end.date()
    if datetime.combine(day, due, tzinfo=tz).timestamp() >= period.end:
        day -= timedelta(days=1)
    return day


def incident_lines(
    incidents: Iterable[Incident], site: str, period: Period, deadlines: Deadlines
) -> list[IncidentLine]:
    """The site's incidents opened in the period, or opened before and not closed by its
    start, with each report's clock as at the report time: a report made after it is left
    out, so the same day's report reads the same whenever it is made again."""
    out = []
    for inc in incidents:
        if inc.site != site or inc.opened_at > period.as_of:
            continue
        closed_before = inc.closed_at is not None and inc.closed_at < period.start
        if inc.opened_at < period.start and closed_before:
            continue  # an earlier day's business
        seen = replace(
            inc,
            phone_report=_by(inc.phone_report, period.as_of),
            written_report=_by(inc.written_report, period.as_of),
        )
        c = clocks(seen, period.as_of, deadlines)
        out.append(
            IncidentLine(
                id=inc.id, title=inc.title, alarm_id=inc.alarm_id, opened_at=inc.opened_at,
                opened_by=inc.opened_by, closed_at=inc.closed_at, phone=c.phone,
                phone_to=seen.phone_report.to_whom if seen.phone_report else None,
                written=c.written,
                follow_ups=sum(1 for f in inc.follow_ups if f.at <= period.as_of),
            )
        )  # fmt: skip
    out.sort(key=lambda i: (i.opened_at, i.id))
    return out


_Report = TypeVar("_Report", PhoneReport, WrittenReport)


def _by(report: _Report | None, as_of: float) -> _Report | None:
    return report if report is not None and report.at <= as_of else None


def self_report(
    checks: Mapping[str, DailyCheck],
    site: str,
    day: date,
    period: Period,
    due: time,
    items: Sequence[tuple[str, str]],
    tz: ZoneInfo,
) -> SelfReport:
    """The site's standing for `day` as at the report time, judged by `gateway.duty`'s
    board (the same rule as the bureau's 15:00 board); `items` are (id, label)."""
    check = checks.get(site)
    if check is not None and (check.day != day or check.first_at > period.as_of):
        check = None  # another day's, or in after the report was made
    as_of = datetime.fromtimestamp(period.as_of, tz)
    # The board's phase (from the reminder time) is not the report's: `due` stands for both.
    entry = board([site], {site: check} if check else {}, as_of, due, due, day).entries[0]
    due_at = datetime.combine(day, due, tzinfo=tz).timestamp()
    if entry.standing is Standing.MISSING:
        standing = CheckStanding.MISSING if period.as_of >= due_at else CheckStanding.NOT_DUE
    else:
        standing = CheckStanding(entry.standing.value)
    labels = dict(items)
    return SelfReport(
        day=day,
        due_at=due_at,
        standing=standing,
        submitted_at=check.first_at if check else None,
        submitted_by=check.submitted_by if check else None,
        answers=tuple(
            CheckLine(a.item, labels.get(a.item, a.item), a.result.value, a.note)
            for a in (check.answers if check else ())
        ),
    )


def hazard_ledger(
    ledger: Iterable[tuple[Hazard, Sequence[HazardEvent]]], site: str, period: Period
) -> HazardLedger:
    """The site's hazards as they stood at the report time (each one's status replayed from
    its timeline, so a later step does not change a past day's report), the overdue ones,
    and every step taken in the period."""
    by_status = dict.fromkeys((s.value for s in HazardStatus), 0)
    by_level = dict.fromkeys((v.value for v in HazardLevel), 0)
    late: list[int] = []
    changes: list[HazardChange] = []
    for h, events in ledger:
        seen = [e for e in events if e.at <= period.as_of]
        if h.site != site or h.found_at > period.as_of or not seen:
            continue
        then = replace(h, status=seen[-1].to_status)
        by_status[then.status.value] += 1
        by_level[h.level.value] += 1
        if overdue(then, period.as_of):
            late.append(h.id)
        changes += [
            HazardChange(
                h.id, h.location, h.level.value, e.at, e.action.value, e.actor,
                e.from_status.value if e.from_status else None, e.to_status.value, e.note,
            )
            for e in seen
            if e.at >= period.start
        ]  # fmt: skip
    changes.sort(key=lambda c: (c.at, c.hazard_id))
    return HazardLedger(
        tuple(by_status.items()), tuple(by_level.items()), tuple(sorted(late)), tuple(changes)
    )


def site_report(
    site: SiteConfig,
    devices: Sequence[DeviceInfo],
    alarms: Sequence[AlarmRow],
    commands: Sequence[CommandRecord],
    period: Period,
    status_now: Mapping[tuple[str, str], str],
    audit: Sequence[AuditRecord] = (),
) -> SiteReport:
    """One site's section, from that site's rows (pure)."""
    alarms = [a for a in alarms if a.site == site.id]
    commands = [c for c in commands if c.site == site.id]
    locations = {device_key(d): d.location for d in devices}
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
        human_actions=tuple(human_actions_in_period(audit, site.id, period)),
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
    audit: Sequence[AuditRecord] = (),
    audit_unreadable: str | None = None,
    loop: LoopRows = LoopRows(),
) -> DailyReport:
    """The whole report from rows (pure): what `build_daily_report` calls after reading."""
    plain = (_site(s, devices, alarms, commands, period, status_now, audit) for s in sites)
    reports = tuple(with_loop(r, config, period, loop) for r in plain)
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
        audit_unreadable=audit_unreadable,
        incidents_unreadable=loop.incidents_unreadable,
        duty_unreadable=loop.duty_unreadable,
        hazards_unreadable=loop.hazards_unreadable,
    )


def _site(
    s: SiteConfig,
    devices: Sequence[DeviceInfo],
    alarms: Sequence[AlarmRow],
    commands: Sequence[CommandRecord],
    period: Period,
    status_now: Mapping[tuple[str, str], str],
    audit: Sequence[AuditRecord],
) -> SiteReport:
    mine = [d for d in devices if d.site == s.id]
    return site_report(s, mine, alarms, commands, period, status_now, audit)


def with_loop(
    report: SiteReport, config: GatewayConfig, period: Period, loop: LoopRows
) -> SiteReport:
    """The site's section with its incidents, self-report and ledger; a section whose
    database could not be read stays empty (`None`), and the report says why."""
    tz = ZoneInfo(config.gateway.timezone)
    due = parse_hhmm(config.daily_checks.due)
    deadlines = Deadlines.from_minutes(
        config.incidents.phone_report_minutes, config.incidents.written_report_minutes
    )
    items = [(i.id, i.label) for i in config.daily_checks.items]
    day = loop.check_day or check_day_in_period(period, due, tz)
    return replace(
        report,
        incidents=tuple(incident_lines(loop.incidents, report.site, period, deadlines)),
        daily_check=(
            None
            if loop.duty_unreadable is not None
            else self_report(loop.checks, report.site, day, period, due, items, tz)
        ),
        hazards=(
            None
            if loop.hazards_unreadable is not None
            else hazard_ledger(loop.ledger, report.site, period)
        ),
    )


def devices_of(inventory: Inventory, site_ids: Iterable[str]) -> list[DeviceInfo]:
    wanted = set(site_ids)
    return [
        DeviceInfo(d.ref.site, d.ref.device, d.type.value, d.config.location, d.config.name)
        for d in inventory
        if d.ref.site in wanted
    ]
