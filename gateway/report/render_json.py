"""The report as JSON: times ISO 8601 with the zone's offset, rates as fractions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config.clockface import Clockface
from gateway.incidents.model import ReportClock
from gateway.report.model import DailyReport, SiteReport


def pct_text(rate: float | None) -> str:
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
            "false_alarm_rate": rate_rounded(t.false_alarm_rate),
        },
        "sites": [{**_site_json(s, iso), **_loop_json(s, report, iso)} for s in report.sites],
        "audit_unreadable": report.audit_unreadable,  # why human_actions are empty, or null
        "closed_loop": [_loop_summary(s) for s in report.sites],
        # Why a closed-loop section is empty (its database could not be read), or null.
        "closed_loop_unreadable": {
            "incidents": report.incidents_unreadable,
            "daily_checks": report.duty_unreadable,
            "hazards": report.hazards_unreadable,
        },
    }


def _loop_summary(s: SiteReport) -> dict[str, Any]:
    """The county's line per site: what in the loop needs the bureau's attention."""
    return {
        "site": s.site,
        "name": s.name,
        "incidents": len(s.incidents),
        "incidents_missed_deadline": sum(i.missed_deadline for i in s.incidents),
        "daily_check": s.daily_check.standing.value if s.daily_check else None,
        "hazards_overdue": len(s.hazards.overdue) if s.hazards else None,
    }


def _clock_json(c: ReportClock, iso: Callable[[float | None], str | None]) -> dict[str, Any]:
    return {
        "state": c.state.value,
        "due_at": iso(c.due_at),
        "done_at": iso(c.done_at),
        "seconds_left": None if c.seconds_left is None else round(c.seconds_left),
    }


def _loop_json(
    s: SiteReport, report: DailyReport, iso: Callable[[float | None], str | None]
) -> dict[str, Any]:
    check = s.daily_check
    ledger = s.hazards
    return {
        "incidents": [
            {
                "id": i.id,
                "title": i.title,
                "alarm_id": i.alarm_id,
                "opened_at": iso(i.opened_at),
                "opened_by": i.opened_by,
                "closed_at": iso(i.closed_at),
                "phone": {**_clock_json(i.phone, iso), "to_whom": i.phone_to},
                "written": _clock_json(i.written, iso),
                "follow_ups": i.follow_ups,
                "missed_deadline": i.missed_deadline,
            }
            for i in s.incidents
        ],
        "incidents_unreadable": report.incidents_unreadable is not None,
        "daily_check": None
        if check is None
        else {
            "day": check.day.isoformat(),
            "due_at": iso(check.due_at),
            "standing": check.standing.value,
            "submitted_at": iso(check.submitted_at),
            "submitted_by": check.submitted_by,
            "items": [
                {"item": a.item, "label": a.label, "result": a.result, "note": a.note}
                for a in check.answers
            ],
        },
        "daily_check_unreadable": report.duty_unreadable is not None,
        "hazards": None
        if ledger is None
        else {
            "by_status": dict(ledger.by_status),
            "by_level": dict(ledger.by_level),
            "overdue": len(ledger.overdue),
            "overdue_ids": list(ledger.overdue),
            "changes": [
                {
                    "hazard_id": c.hazard_id,
                    "location": c.location,
                    "level": c.level,
                    "at": iso(c.at),
                    "action": c.action,
                    "actor": c.actor,
                    "from": c.from_status,
                    "to": c.to_status,
                    "note": c.note,
                }
                for c in ledger.changes
            ],
        },
        "hazards_unreadable": report.hazards_unreadable is not None,
    }


def rate_rounded(rate: float | None) -> float | None:
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
        "human_actions": [
            {
                "seq": a.seq,
                "at": iso(a.at),
                "actor": a.actor,
                "actor_name": a.actor_name,
                "role": a.role,
                "action": a.action,
                "target": a.target,
                "result": a.result,
                "detail": a.detail,
            }
            for a in s.human_actions
        ],
        "false_alarms": {
            "closed": s.closed,
            "false_alarms": s.false_alarms,
            "rate": rate_rounded(s.false_alarm_rate),
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
