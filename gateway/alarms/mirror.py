"""Central mode: adopting another gateway's view of an alarm into our book.

The edge that watches a site is the authority for its alarms; the central gateway mirrors
the snapshots it publishes so that the bureau's pages, report and store see them. No
lifecycle rule is applied here: the snapshot is the truth, and the book only keeps its one
open alarm per key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.alarms.book import Action, Alarm, AlarmBook, AlarmState, AlarmWrite, Disposition
from rules.model import AlarmKey, AlarmType, Severity


def mirror(
    book: AlarmBook,
    snap: dict[str, Any],
    parse_time: Callable[[str | None], float | None],
    now: float,
) -> list[AlarmWrite]:
    """Adopt another gateway's view of an alarm into `book`.

    Returns the writes to store, in order: the close of an alarm the snapshot supersedes,
    then the snapshot's own (a row-only update when its change is unknown); none for a
    snapshot without a valid key, state, severity and raise time.
    """
    try:
        key = AlarmKey(snap["site"], snap["device"], AlarmType(snap["type"]))
        state = AlarmState(snap["state"])
        severity = Severity(snap["severity"])
        raised_at = parse_time(snap["raised_at"]) or now
    except (KeyError, ValueError, TypeError):
        return []
    writes: list[AlarmWrite] = []
    alarm = book.get(snap["id"])
    if alarm is None:
        stale = book.find(key)
        if stale is not None and stale.id != snap["id"]:
            # The edge has a newer alarm for this key (we missed the close): ours is over,
            # or the store's one-open-per-key index would refuse the new one.
            stale.state = AlarmState.CLOSED
            stale.closed_at = now
            stale.closed_by = "edge"
            stale.note = f"superseded by {snap['id']} at the edge"
            book.hold(stale)  # closed: the book lets it go
            writes.append(book.record(stale, Action.CLOSED, now, "edge", None, None))
        alarm = Alarm(snap["id"], key.site, key.device, key.type, severity, state, raised_at)
    _adopt(alarm, snap, severity, state, parse_time, now)
    book.hold(alarm)
    try:
        action = Action(snap.get("change", "updated"))
    except ValueError:
        action = Action.UPDATED
    if action is Action.UPDATED:
        writes.append(AlarmWrite(alarm, (), len(alarm.timeline), action))
        return writes
    actor = {Action.ACKED: alarm.acked_by, Action.CLOSED: alarm.closed_by}.get(action) or "edge"
    note = alarm.note if action is Action.CLOSED else None
    writes.append(
        book.record(alarm, action, alarm.updated_at, actor, alarm.reason, alarm.value, note=note)
    )
    return writes


def _adopt(
    alarm: Alarm,
    snap: dict[str, Any],
    severity: Severity,
    state: AlarmState,
    parse_time: Callable[[str | None], float | None],
    now: float,
) -> None:
    """Copy another gateway's snapshot of an alarm onto ours (central mirror)."""
    alarm.severity = severity
    alarm.state = state
    alarm.level = snap.get("level")
    alarm.latched = bool(snap.get("latched"))
    alarm.acked = bool(snap.get("acked"))
    alarm.value = snap.get("value")
    alarm.peak = snap.get("peak")
    alarm.count = int(snap.get("count") or 1)
    alarm.reason = snap.get("reason")
    alarm.acked_at = parse_time(snap.get("acked_at"))
    alarm.acked_by = snap.get("acked_by")
    alarm.cleared_at = parse_time(snap.get("cleared_at"))
    alarm.closed_at = parse_time(snap.get("closed_at"))
    alarm.closed_by = snap.get("closed_by")
    disposition = snap.get("disposition")
    known = {d.value for d in Disposition}
    alarm.disposition = Disposition(str(disposition)) if disposition in known else None
    alarm.note = snap.get("note")
    alarm.updated_at = parse_time(snap.get("updated_at")) or now
