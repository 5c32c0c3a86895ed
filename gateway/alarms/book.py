"""The alarm lifecycle (DESIGN section 6), in memory and synchronous.

`AlarmBook` holds every open (not closed) alarm, one per (site, device, type), and turns
engine `AlarmChange`s and people's actions into state transitions. Each transition
returns an `AlarmWrite` for the store; the book itself does no I/O, so the alarm path
never waits on the disk. The store writer persists writes in order and only then are
they published, so nothing outside the gateway learns of a transition the store lacks.

Lifecycle: active -> (ack) -> cleared (condition normal) -> (close with disposition)
-> closed. Latched (event) alarms stay active until a person closes them.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rules.model import AlarmChange, AlarmKey, AlarmType, ChangeKind, Severity

SYSTEM = "system"

# Plain repeats kept at each end of an alarm's timeline, unless configured
# (`rules.timeline_repeats`).
TIMELINE_REPEATS = 10


class AlarmState(StrEnum):
    ACTIVE = "active"
    CLEARED = "cleared"
    CLOSED = "closed"


class Disposition(StrEnum):
    REAL = "real"
    FALSE_ALARM = "false_alarm"
    TEST = "test"
    MAINTENANCE = "maintenance"


class Action(StrEnum):
    RAISED = "raised"
    RETURNED = "returned"  # condition came back after it had cleared
    REPEATED = "repeated"  # another event of a latched alarm (button pressed again)
    ESCALATED = "escalated"
    UPDATED = "updated"  # new peak value; row only, no timeline entry
    CLEARED = "cleared"
    ACKED = "acked"
    CLOSED = "closed"
    COMMAND_SENT = "command_sent"
    COMMAND_RESULT = "command_result"
    NOTIFY_ATTEMPT = "notify_attempt"  # one try to tell one person (or group) through one channel
    NOTIFY_SUPPRESSED = "notify_suppressed"  # device in maintenance: recorded, not pushed
    NOTIFY_CANCELLED = "notify_cancelled"  # acknowledged or closed: pending steps dropped
    RESTORED = "restored"
    # A person's answer from the phone link (seen, on the way, on site): no state change.
    RESPONDED = "responded"


@dataclass(slots=True)
class TimelineEntry:
    at: float
    action: Action
    actor: str
    reason: str | None = None
    value: float | None = None
    severity: Severity | None = None
    note: str | None = None
    detail: dict[str, Any] | None = None
    # Its place on the alarm's timeline, for ever: entries elided from the middle leave a
    # gap in the numbers, which is how readers see where and how many.
    seq: int = -1


@dataclass(slots=True)
class RepeatWindow:
    """Which plain repeats an alarm's timeline still holds: the first `n` ever (counted in
    `head`) and the last `n` (`tail`); those between are elided. A plain repeat is another
    press of a button already pressed and not acknowledged, at the same severity: it changes
    nothing a replay of the timeline concludes (the daily report's), so only its number
    matters, and `Alarm.count` keeps that exact. A repeat that re-opens an acknowledged
    alarm or raises its severity is never elided, nor any other entry."""

    head: int = 0
    tail: deque[TimelineEntry] = field(default_factory=deque)
    elided: int = 0  # timeline entries no longer held: numbered, but gone


@dataclass(slots=True)
class Alarm:
    id: str
    site: str
    device: str
    type: AlarmType
    severity: Severity
    state: AlarmState
    raised_at: float
    level: str | None = None
    latched: bool = False
    acked: bool = False
    value: float | None = None
    peak: float | None = None
    count: int = 1
    reason: str | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    cleared_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    disposition: Disposition | None = None
    note: str | None = None
    updated_at: float = 0.0
    timeline: list[TimelineEntry] = field(default_factory=list)
    next_seq: int = 0  # the `seq` of the next timeline entry
    repeats: RepeatWindow = field(default_factory=RepeatWindow)

    def __post_init__(self) -> None:
        self.next_seq = max(self.next_seq, len(self.timeline))

    @property
    def key(self) -> AlarmKey:
        return AlarmKey(self.site, self.device, self.type)


@dataclass(frozen=True, slots=True)
class AlarmWrite:
    """One transition to persist: the alarm row as it now is and the entries it gained.

    `first_seq` is the timeline number of the first new entry, so replays are idempotent;
    `elided` are the numbers of entries the timeline no longer holds (repeats beyond the
    window: `RepeatWindow`), to delete with this write.
    """

    alarm: Alarm
    entries: tuple[TimelineEntry, ...]
    first_seq: int
    action: Action
    elided: tuple[int, ...] = ()


class AlarmNotFound(Exception):
    pass


class TransitionRefused(Exception):
    """A person asked for something the alarm's state forbids (HTTP 409)."""


class AlarmBook:
    def __init__(
        self,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        repeats_kept: int = TIMELINE_REPEATS,
    ) -> None:
        if repeats_kept < 1:
            raise ValueError("repeats_kept must be at least 1")
        self._new_id = new_id
        self._repeats_kept = repeats_kept
        self._open: dict[AlarmKey, Alarm] = {}
        self._by_id: dict[str, Alarm] = {}
        self._reserved: dict[AlarmKey, str] = {}

    # ------------------------------------------------------------- queries
    def open_alarms(self) -> Iterator[Alarm]:
        return iter(self._open.values())

    def get(self, alarm_id: str) -> Alarm | None:
        return self._by_id.get(alarm_id)

    def find(self, key: AlarmKey) -> Alarm | None:
        return self._open.get(key)

    def __len__(self) -> int:
        return len(self._open)

    def open_by_severity(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Severity}
        for a in self._open.values():
            counts[a.severity.value] += 1
        return counts

    def id_for(self, key: AlarmKey) -> str:
        """The id the alarm for `key` has, or will have when the pending change lands.

        Lets a shut-off command carry its alarm's id before the alarm is even recorded.
        """
        alarm = self._open.get(key)
        if alarm is not None:
            return alarm.id
        return self._reserved.setdefault(key, self._new_id())

    # ------------------------------------------------------------- loading
    def load(self, alarms: Iterable[Alarm]) -> None:
        for alarm in alarms:
            if alarm.state is AlarmState.CLOSED:
                continue
            self._rewindow(alarm)
            self._open[alarm.key] = alarm
            self._by_id[alarm.id] = alarm

    # --------------------------------------------------- engine transitions
    def apply(self, change: AlarmChange, now: float) -> AlarmWrite | None:
        alarm = self._open.get(change.key)
        if change.kind is ChangeKind.CLEAR:
            return self._clear(alarm, change, now)
        if alarm is None:
            return self._raise(change, now)
        if change.kind is ChangeKind.PEAK:
            _note_value(alarm, change.value)
            alarm.updated_at = now
            return AlarmWrite(alarm, (), len(alarm.timeline), Action.UPDATED)
        if alarm.state is AlarmState.CLEARED:
            return self._returned(alarm, change, now)
        return self._worsened(alarm, change, now)

    def _raise(self, change: AlarmChange, now: float) -> AlarmWrite:
        key = change.key
        alarm = Alarm(
            id=self._reserved.pop(key, "") or self._new_id(),
            site=key.site,
            device=key.device,
            type=key.type,
            severity=change.severity,
            state=AlarmState.ACTIVE,
            raised_at=now,
            level=change.level,
            latched=change.latched,
            value=change.value,
            peak=change.value,
            reason=change.reason.value,
            updated_at=now,
        )
        self._open[key] = alarm
        self._by_id[alarm.id] = alarm
        return self.record(alarm, Action.RAISED, now, SYSTEM, change.reason.value, change.value)

    def _returned(self, alarm: Alarm, change: AlarmChange, now: float) -> AlarmWrite:
        alarm.state = AlarmState.ACTIVE
        alarm.cleared_at = None
        alarm.count += 1
        alarm.acked = False  # a new occurrence needs a person's attention again
        alarm.severity = change.severity
        alarm.level = change.level or alarm.level
        alarm.reason = change.reason.value
        _note_value(alarm, change.value)
        return self.record(alarm, Action.RETURNED, now, SYSTEM, change.reason.value, change.value)

    def _worsened(self, alarm: Alarm, change: AlarmChange, now: float) -> AlarmWrite:
        was_acked, was_severity = alarm.acked, alarm.severity
        _note_value(alarm, change.value)
        alarm.reason = change.reason.value
        if change.latched or alarm.latched:
            alarm.latched = True
            alarm.count += 1
            alarm.acked = False
            action = Action.REPEATED
        else:
            action = Action.ESCALATED
        if change.severity.rank > alarm.severity.rank:
            alarm.severity = change.severity
            alarm.acked = False  # got worse: must be acknowledged again
        if change.level is not None:
            alarm.level = change.level
        plain = action is Action.REPEATED and not was_acked and alarm.severity is was_severity
        return self.record(
            alarm, action, now, SYSTEM, change.reason.value, change.value, plain=plain
        )

    def _clear(self, alarm: Alarm | None, change: AlarmChange, now: float) -> AlarmWrite | None:
        if alarm is None or alarm.state is not AlarmState.ACTIVE or alarm.latched:
            return None  # latched alarms wait for a person; nothing open: nothing to clear
        alarm.state = AlarmState.CLEARED
        alarm.cleared_at = now
        alarm.reason = change.reason.value
        if change.value is not None:
            alarm.value = change.value
        return self.record(alarm, Action.CLEARED, now, SYSTEM, change.reason.value, change.value)

    # ------------------------------------------------------ people's actions
    def ack(self, alarm_id: str, by: str, note: str | None, now: float) -> AlarmWrite:
        alarm = self._require(alarm_id)
        if alarm.acked:
            raise TransitionRefused(f"already acknowledged by {alarm.acked_by}")
        alarm.acked = True
        alarm.acked_at = now
        alarm.acked_by = by
        return self.record(alarm, Action.ACKED, now, by, None, None, note=note)

    def respond(
        self,
        alarm_id: str,
        by: str,
        status: str,
        note: str | None,
        now: float,
        *,
        via: str,
        source: str,
    ) -> AlarmWrite:
        """A person says where they are with an open alarm (`via` a phone link, from the
        address `source`); acknowledging is apart (`ack`)."""
        alarm = self._require(alarm_id)
        detail = {"status": status, "via": via, "source": source}
        return self.record(alarm, Action.RESPONDED, now, by, None, None, note=note, detail=detail)

    def close(
        self,
        alarm_id: str,
        by: str,
        disposition: Disposition,
        note: str | None,
        now: float,
        watched: bool = True,
    ) -> AlarmWrite:
        """`watched`: False for an alarm whose device the configuration no longer has (a
        reload removed it): nothing will ever clear it, so a person may close it active."""
        alarm = self._require(alarm_id)
        if alarm.state is AlarmState.ACTIVE and not alarm.latched and watched:
            raise TransitionRefused(
                f"{alarm.type} on {alarm.device} is still active: it can be closed once "
                "the condition has returned to normal"
            )
        if not alarm.acked:
            alarm.acked = True
            alarm.acked_at = now
            alarm.acked_by = by
        alarm.state = AlarmState.CLOSED
        alarm.closed_at = now
        alarm.closed_by = by
        alarm.disposition = disposition
        alarm.note = note
        del self._open[alarm.key]
        del self._by_id[alarm.id]
        detail: dict[str, Any] = {"disposition": disposition.value}
        if not watched:
            detail["unwatched"] = True
        return self.record(alarm, Action.CLOSED, now, by, None, None, note=note, detail=detail)

    def annotate(
        self,
        alarm_id: str,
        action: Action,
        now: float,
        detail: dict[str, Any],
        actor: str = SYSTEM,
    ) -> AlarmWrite | None:
        """Add a timeline entry (command sent, command result) to an open alarm."""
        alarm = self._by_id.get(alarm_id)
        if alarm is None:
            return None
        return self.record(alarm, action, now, actor, None, None, detail=detail)

    # ------------------------------- also for central mode (gateway.alarms.mirror)
    def hold(self, alarm: Alarm) -> None:
        """Hold `alarm` as the open one of its key, or let it go once closed.

        For an alarm another gateway decides (central mode): no lifecycle rule applies, the
        caller has set its state. Everything else changes alarms through the transitions.
        """
        if alarm.state is AlarmState.CLOSED:
            self._forget(alarm)
        else:
            self._open[alarm.key] = alarm
            self._by_id[alarm.id] = alarm

    def record(
        self,
        alarm: Alarm,
        action: Action,
        now: float,
        actor: str,
        reason: str | None,
        value: float | None,
        note: str | None = None,
        detail: dict[str, Any] | None = None,
        *,
        plain: bool = False,
    ) -> AlarmWrite:
        """Append the timeline entry of `action` and return the write to store: where every
        transition ends, and how the mirror records what the edge did. A `plain` repeat
        (see `RepeatWindow`) may push an older one out of the timeline."""
        seq = alarm.next_seq
        entry = TimelineEntry(now, action, actor, reason, value, alarm.severity, note, detail, seq)
        alarm.next_seq = seq + 1
        alarm.timeline.append(entry)
        alarm.updated_at = now
        elided = self._window(alarm, entry) if plain else ()
        return AlarmWrite(alarm, (entry,), seq, action, elided)

    def _window(self, alarm: Alarm, entry: TimelineEntry) -> tuple[int, ...]:
        """Keep `entry`, a plain repeat, in the window; the numbers of those it pushes out."""
        window = alarm.repeats
        if window.head < self._repeats_kept:
            window.head += 1
            return ()
        window.tail.append(entry)
        elided: list[int] = []
        while len(window.tail) > self._repeats_kept:
            old = window.tail.popleft()
            # From the far end of a short list (2n repeats and the entries between them).
            for i in range(len(alarm.timeline) - 1, -1, -1):
                if alarm.timeline[i] is old:
                    del alarm.timeline[i]
                    break
            window.elided += 1
            elided.append(old.seq)
        return tuple(elided)

    def _rewindow(self, alarm: Alarm) -> None:
        """The window of an alarm read back from the store: its plain repeats found again by
        replaying its timeline (acknowledged? which severity?), the first `n` as the head.
        What the window holds beyond `n` goes with the next repeat."""
        window = RepeatWindow(elided=max(0, alarm.next_seq - len(alarm.timeline)))
        acked = False
        severity: Severity | None = None
        for e in alarm.timeline:
            if e.action is Action.REPEATED:
                if not acked and e.severity is severity:
                    if window.head < self._repeats_kept:
                        window.head += 1
                    else:
                        window.tail.append(e)
                acked = False
            elif e.action in (Action.RAISED, Action.RETURNED):
                acked = False
            elif e.action is Action.ESCALATED:
                if severity is not None and e.severity is not None:
                    acked = acked and e.severity.rank <= severity.rank
            elif e.action is Action.ACKED:
                acked = True
            if e.severity is not None:
                severity = e.severity
        alarm.repeats = window

    def _forget(self, alarm: Alarm) -> None:
        if self._open.get(alarm.key) is alarm:
            del self._open[alarm.key]
        self._by_id.pop(alarm.id, None)

    def _require(self, alarm_id: str) -> Alarm:
        alarm = self._by_id.get(alarm_id)
        if alarm is None:
            raise AlarmNotFound(alarm_id)
        return alarm


def _note_value(alarm: Alarm, value: float | None) -> None:
    if value is None:
        return
    alarm.value = value
    if alarm.peak is None or value > alarm.peak:
        alarm.peak = value
