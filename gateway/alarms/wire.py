"""An alarm's JSON shape in the external contract (DESIGN section 8): the API, the
`{prefix}/{site}/alarms` topic and the live feed. Made only at those edges."""

from __future__ import annotations

from typing import Any

from gateway.alarms.book import SYSTEM, Alarm, TimelineEntry
from gateway.alarms.event import AlarmContext, AlarmEvent, AlarmSnapshot
from gateway.config.clockface import Clockface

# The timeline entry that stands for repeats left out of it (`book.RepeatWindow`); only in
# the JSON, never stored.
ELIDED = "repeats_elided"


def alarm_json(
    a: Alarm | AlarmSnapshot,
    clock: Clockface,
    *,
    timeline: bool = True,
    location: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "site": a.site,
        "device": a.device,
        "location": location,
        "type": a.type.value,
        "severity": a.severity.value,
        "level": a.level,
        "state": a.state.value,
        "acked": a.acked,
        "latched": a.latched,
        "value": a.value,
        "peak": a.peak,
        "count": a.count,
        "reason": a.reason,
        "raised_at": clock.iso(a.raised_at),
        "acked_at": clock.iso(a.acked_at),
        "acked_by": a.acked_by,
        "cleared_at": clock.iso(a.cleared_at),
        "closed_at": clock.iso(a.closed_at),
        "closed_by": a.closed_by,
        "disposition": a.disposition.value if a.disposition else None,
        "note": a.note,
        "updated_at": clock.iso(a.updated_at),
    }
    if timeline and isinstance(a, Alarm):
        out["timeline"] = timeline_json(a.timeline, clock)
        out["timeline_elided"] = a.next_seq - len(a.timeline)
    return out


def timeline_json(entries: list[TimelineEntry], clock: Clockface) -> list[dict[str, Any]]:
    """The entries in order, with a `repeats_elided` entry where repeats were left out (a
    gap in the numbers): how many, and between which times."""
    out: list[dict[str, Any]] = []
    before: TimelineEntry | None = None
    for e in entries:
        if before is not None and e.seq > before.seq + 1:
            out.append(
                {
                    "at": clock.iso(before.at),
                    "action": ELIDED,
                    "actor": SYSTEM,
                    "reason": None,
                    "value": None,
                    "severity": None,
                    "note": None,
                    "detail": {
                        "count": e.seq - before.seq - 1,
                        "after": clock.iso(before.at),
                        "before": clock.iso(e.at),
                    },
                }
            )
        out.append(entry_json(e, clock))
        before = e
    return out


def entry_json(e: TimelineEntry, clock: Clockface) -> dict[str, Any]:
    return {
        "at": clock.iso(e.at),
        "action": e.action.value,
        "actor": e.actor,
        "reason": e.reason,
        "value": e.value,
        "severity": e.severity.value if e.severity else None,
        "note": e.note,
        "detail": e.detail,
    }


def event_json(e: AlarmEvent, clock: Clockface) -> dict[str, Any]:
    """An alarm change as published and pushed: the alarm without its timeline, whether its
    device is in maintenance, and what changed."""
    out = alarm_json(e.alarm, clock, timeline=False, location=e.location)
    out["maintenance"] = e.maintenance
    out["change"] = e.change.value
    return out


def alarm_view(
    a: Alarm, context: AlarmContext, clock: Clockface, timeline: bool = True
) -> dict[str, Any]:
    """An alarm as the API shows it: with its device's location and maintenance state."""
    out = alarm_json(a, clock, timeline=timeline, location=context.location(a.site, a.device))
    out["maintenance"] = context.in_maintenance(a.site, a.device)
    return out
