"""The report as JSON: times ISO 8601 with the zone's offset, rates as fractions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config.clockface import Clockface
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
        "sites": [_site_json(s, iso) for s in report.sites],
        "audit_unreadable": report.audit_unreadable,  # why human_actions are empty, or null
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
