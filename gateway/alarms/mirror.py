"""Central mode: adopting another gateway's view of an alarm into our book.

The edge that watches a site is the authority for its alarms; the central gateway mirrors
the snapshots it publishes so that the bureau's pages, report and store see them. No
lifecycle rule is applied here: the snapshot is the truth, and the book only keeps its one
open alarm per key.

The snapshot arrives typed (an `AlarmEvent`, parsed at the boundary by `gateway.central`)
and bound to the site whose topic it came on: it may only touch the alarm of its own key.
"""

from __future__ import annotations

from gateway.alarms.book import Action, Alarm, AlarmBook, AlarmState, AlarmWrite
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from rules.model import AlarmKey


class ForeignAlarm(Exception):
    """A snapshot whose id names an alarm of another key (site, device or type)."""

    def __init__(self, alarm_id: str, ours: AlarmKey, claimed: AlarmKey) -> None:
        super().__init__(
            f"alarm {alarm_id} is {ours.site}/{ours.device}/{ours.type.value}, "
            f"not {claimed.site}/{claimed.device}/{claimed.type.value}"
        )
        self.alarm_id = alarm_id


def mirror(book: AlarmBook, event: AlarmEvent, now: float) -> list[AlarmWrite]:
    """Adopt another gateway's view of an alarm into `book`.

    Returns the writes to store, in order: the close of an alarm the snapshot supersedes,
    then the snapshot's own (a row-only update when its change is `updated`). Raises
    `ForeignAlarm`, with nothing changed, when the id is that of an alarm of another key.
    """
    snap = event.alarm
    alarm = book.get(snap.id)
    if alarm is not None and alarm.key != snap.key:
        raise ForeignAlarm(snap.id, alarm.key, snap.key)
    # Checked: from here on nothing can fail half-way.
    writes: list[AlarmWrite] = []
    # A repeat of an alarm we hold, unacknowledged, at the same severity: the edge's
    # timeline is bounded the same way as ours (`RepeatWindow`).
    plain = (
        event.change is Action.REPEATED
        and alarm is not None
        and not alarm.acked
        and alarm.severity is snap.severity
    )
    if alarm is None:
        stale = book.find(snap.key)
        if stale is not None:
            # The edge has a newer alarm for this key (we missed the close): ours is over,
            # or the store's one-open-per-key index would refuse the new one.
            stale.state = AlarmState.CLOSED
            stale.closed_at = now
            stale.closed_by = "edge"
            stale.note = f"superseded by {snap.id} at the edge"
            book.hold(stale)  # closed: the book lets it go
            writes.append(book.record(stale, Action.CLOSED, now, "edge", None, None))
        alarm = Alarm(
            snap.id, snap.site, snap.device, snap.type, snap.severity, snap.state, snap.raised_at
        )
    _adopt(alarm, snap)
    book.hold(alarm)
    action = event.change
    if action is Action.UPDATED:
        writes.append(AlarmWrite(alarm, (), len(alarm.timeline), action))
        return writes
    actor = {Action.ACKED: alarm.acked_by, Action.CLOSED: alarm.closed_by}.get(action) or "edge"
    note = alarm.note if action is Action.CLOSED else None
    writes.append(
        book.record(
            alarm,
            action,
            alarm.updated_at,
            actor,
            alarm.reason,
            alarm.value,
            note=note,
            plain=plain,
        )
    )
    return writes


def _adopt(alarm: Alarm, snap: AlarmSnapshot) -> None:
    """Copy another gateway's snapshot of an alarm onto ours (central mirror)."""
    alarm.severity = snap.severity
    alarm.state = snap.state
    alarm.level = snap.level
    alarm.latched = snap.latched
    alarm.acked = snap.acked
    alarm.value = snap.value
    alarm.peak = snap.peak
    alarm.count = snap.count
    alarm.reason = snap.reason
    alarm.acked_at = snap.acked_at
    alarm.acked_by = snap.acked_by
    alarm.cleared_at = snap.cleared_at
    alarm.closed_at = snap.closed_at
    alarm.closed_by = snap.closed_by
    alarm.disposition = snap.disposition
    alarm.note = snap.note
    alarm.updated_at = snap.updated_at
