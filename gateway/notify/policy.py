"""Escalation: who is told about an alarm, how, and when. Pure: time is an argument (`now`,
both clocks).

A policy per severity is a list of steps (`after` the alarm is raised, to contacts by role,
through channels in fallback order, optionally repeated until acknowledged). Each step of
each occurrence of an alarm becomes a `Send` row with a due time; the shell persists the rows
before acting on them, so a restart neither repeats a step already sent nor skips one that
fell due while the gateway was down.

Clocks: a send's `due_at` is wall time (the alarm's `raised_at` plus the step's delay) because
it is stored, and after a restart wall time is the only clock there is: a step that fell
due while the gateway was down goes out at once. Within one run, though, every delay runs on
the monotonic clock: when a send enters memory (scheduled, or reloaded at start) its wall
`due_at` is turned once into `due_mono`, and from then on only monotonic time moves it, as
do the grouping windows. So a step of the wall clock neither fires the voice call early nor
holds it back; only a step that falls between a save and a restart shifts what is left.

Grouping: the first due send for a site goes at once; further sends of the same step for the
same site within `group_window_s` are held to the end of that window and go out together as
one message. A critical alarm is never held behind a non-critical one.

Acknowledging or closing an alarm cancels its pending steps ("reminders until acknowledged").
A device in maintenance has its alarms recorded but not pushed: no rows are made.

Observed sites (central mode, DESIGN section 2): for a site an edge gateway serves, the edge
has told the site's people already; the central gateway keeps only the bureau's part of each
step (roles in `BUREAU_ROLES`), so an alarm the edge leaves unacknowledged still reaches the
bureau's duty officer, from the bureau. An alarm the central gateway raises itself about such
a site (`AlarmInfo.own`: its edge is offline) gets the whole policy, since the edge, being
down, tells nobody; the scope is kept in the send's occurrence (`:whole`), so that a restart
and the grouping of sends agree with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from gateway.config.schema import NotifySection
from rules.model import Instant


class SendState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # every channel failed for every recipient; on the timeline, not retried
    CANCELLED = "cancelled"  # acknowledged or closed before it was due


class Why(StrEnum):
    """Reasons a decision was taken; they go on the alarm's timeline."""

    SCHEDULED = "scheduled"
    DUE = "due"
    GROUPED = "grouped"
    CANCELLED_ACKED = "cancelled_acked"
    CANCELLED_CLOSED = "cancelled_closed"
    SUPPRESSED_MAINTENANCE = "suppressed_maintenance"
    NO_POLICY = "no_policy"


@dataclass(frozen=True, slots=True)
class Step:
    after_s: float
    roles: tuple[str, ...]
    channels: tuple[str, ...]  # fallback order
    repeat_every_s: float | None = None  # reminders until acknowledged
    max_repeats: int = 12


Policy = tuple[Step, ...]

BUREAU_ROLES = frozenset({"bureau_duty", "bureau_on_duty"})


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """What escalation needs to know of an alarm (from the committed alarm JSON)."""

    id: str
    site: str
    device: str
    severity: str
    count: int  # occurrence: a return to alarm is a new occurrence, notified again
    raised_at: float
    acked: bool
    closed: bool
    own: bool = False  # raised here about an observed site: the whole policy applies


@dataclass(frozen=True, slots=True)
class SendKey:
    alarm_id: str
    occurrence: str  # f"{count}:{severity}" — an escalation to a higher severity is new too
    step: int
    repeat: int

    def __str__(self) -> str:
        return f"{self.alarm_id}/{self.occurrence}/{self.step}/{self.repeat}"

    @property
    def whole(self) -> bool:
        return self.occurrence.endswith(WHOLE)


WHOLE = ":whole"  # occurrence suffix: the whole policy, even on an observed site


@dataclass(frozen=True, slots=True)
class Send:
    key: SendKey
    site: str
    severity: str
    due_at: float  # wall time: stored, and what a restart goes by
    state: SendState = SendState.PENDING
    sent_at: float | None = None  # wall time
    due_mono: float = 0.0  # when it falls due on this run's monotonic clock; not stored


def _on_mono(wall_at: float, now: Instant) -> float:
    """A wall time as this run's monotonic clock reads it, taken at `now`."""
    return now.mono + (wall_at - now.wall)


@dataclass(frozen=True, slots=True)
class Batch:
    """Sends that go out as one message: same site, same step of the same policy."""

    site: str
    severity: str
    step: Step
    sends: tuple[Send, ...]

    @property
    def alarm_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.key.alarm_id for s in self.sends))


@dataclass(slots=True)
class Escalations:
    policies: Mapping[str, Policy]
    group_window_s: float = 30.0
    observed: frozenset[str] = frozenset()  # sites an edge gateway serves: bureau steps only
    sends: dict[SendKey, Send] = field(default_factory=dict)
    _last_batch_at: dict[Group, float] = field(default_factory=dict)  # monotonic

    def load(self, sends: Iterable[Send], now: Instant) -> None:
        """Rows reloaded at start: their wall times are all a restart has to go by."""
        for s in sends:
            self.sends[s.key] = replace(s, due_mono=_on_mono(s.due_at, now))
            if s.state is SendState.SENT and s.sent_at is not None:
                group = _group(s)
                sent = _on_mono(s.sent_at, now)
                self._last_batch_at[group] = max(self._last_batch_at.get(group, sent), sent)

    def replace_policies(self, policies: Mapping[str, Policy], group_window_s: float) -> list[Send]:
        """A reloaded configuration's policies. Pending sends keep their due times (what
        was sent stays sent); a pending send whose step the new policy no longer has is
        cancelled and returned, for the shell to persist."""
        self.policies = policies
        self.group_window_s = group_window_s
        dropped = [
            replace(s, state=SendState.CANCELLED)
            for s in self.sends.values()
            if s.state is SendState.PENDING and s.key.step >= len(policies.get(s.severity, ()))
        ]
        for s in dropped:
            self.sends[s.key] = s
        return dropped

    # ------------------------------------------------------------- changes
    def on_alarm(
        self, a: AlarmInfo, in_maintenance: bool, now: Instant
    ) -> tuple[list[Send], Why | None]:
        """An alarm was raised, returned, repeated or escalated: the sends to add."""
        if a.acked or a.closed:
            return self.on_handled(a)
        policy = self.policies.get(a.severity)
        if not policy:
            return [], Why.NO_POLICY
        if in_maintenance:
            return [], Why.SUPPRESSED_MAINTENANCE
        whole = a.own and a.site in self.observed
        occurrence = f"{a.count}:{a.severity}" + (WHOLE if whole else "")
        added = []
        for i in range(len(policy)):
            step = self.step(a.site, a.severity, i, whole)
            if not step.roles:
                continue  # the edge tells the site's people
            key = SendKey(a.id, occurrence, i, 0)
            if key not in self.sends:
                due_at = a.raised_at + step.after_s
                s = Send(key, a.site, a.severity, due_at, due_mono=_on_mono(due_at, now))
                self.sends[key] = s
                added.append(s)
        return added, Why.SCHEDULED if added else None

    def on_handled(self, a: AlarmInfo) -> tuple[list[Send], Why | None]:
        """Acknowledged or closed: every pending send of this alarm is cancelled."""
        why = Why.CANCELLED_CLOSED if a.closed else Why.CANCELLED_ACKED
        cancelled = []
        for key, s in self.sends.items():
            if key.alarm_id == a.id and s.state is SendState.PENDING:
                cancelled.append(replace(s, state=SendState.CANCELLED))
        for s in cancelled:
            self.sends[s.key] = s
        return cancelled, why if cancelled else None

    # --------------------------------------------------------------- timing
    def due(self, now: Instant) -> list[Batch]:
        """Batches to send now. Held sends (inside a group window) wait for its end."""
        t = now.mono
        groups: dict[Group, list[Send]] = {}
        for s in self.sends.values():
            if s.state is SendState.PENDING and s.due_mono <= t:
                groups.setdefault(_group(s), []).append(s)
        batches = []
        for group, sends in sorted(groups.items(), key=lambda kv: _rank(kv[0][1])):
            last = self._last_batch_at.get(group)
            if last is not None and t < last + self.group_window_s:
                continue  # inside the window: these go together when it ends
            step = self.step(*group)
            batches.append(
                Batch(group[0], group[1], step, tuple(sorted(sends, key=lambda s: s.due_at)))
            )
        return batches

    def step(self, site: str, severity: str, index: int, whole: bool = False) -> Step:
        """The policy's step as it applies to this site: for an observed site, only the
        bureau's roles (possibly none), unless the whole policy applies."""
        step = self.policies[severity][index]
        if site in self.observed and not whole:
            return replace(step, roles=tuple(r for r in step.roles if r in BUREAU_ROLES))
        return step

    def next_due(self) -> float | None:
        """When `due` may next return something, monotonic (for the shell's sleep)."""
        times = []
        for s in self.sends.values():
            if s.state is SendState.PENDING:
                last = self._last_batch_at.get(_group(s))
                held = last + self.group_window_s if last is not None else 0.0
                times.append(max(s.due_mono, held))
        return min(times) if times else None

    def started(self, batch: Batch, now: Instant) -> None:
        """A batch goes out: its group's window starts now (and again at the answer, in
        `done`), so that a send of the same group falling due while it is in flight is held
        with the rest instead of going out alone beside it."""
        self._last_batch_at[_group(batch.sends[0])] = now.mono

    def done(self, batch: Batch, now: Instant, ok: bool) -> list[Send]:
        """Record a batch's outcome; returns changed and newly scheduled (repeat) sends."""
        changed = []
        self._last_batch_at[_group(batch.sends[0])] = now.mono
        for s in batch.sends:
            state = SendState.SENT if ok else SendState.FAILED
            done = replace(s, state=state, sent_at=now.wall)
            self.sends[s.key] = done
            changed.append(done)
            step = batch.step
            if step.repeat_every_s is not None and s.key.repeat < step.max_repeats:
                nxt = SendKey(s.key.alarm_id, s.key.occurrence, s.key.step, s.key.repeat + 1)
                if nxt not in self.sends:
                    reminder = Send(
                        nxt,
                        s.site,
                        s.severity,
                        s.due_at + step.repeat_every_s,
                        due_mono=s.due_mono + step.repeat_every_s,
                    )
                    self.sends[nxt] = reminder
                    changed.append(reminder)
        return changed

    def forget_before(self, cutoff: float) -> None:
        """Drop finished sends older than `cutoff` from memory (they stay in the store)."""
        for key in [
            k
            for k, s in self.sends.items()
            if s.state is not SendState.PENDING and s.due_at < cutoff
        ]:
            del self.sends[key]


Group = tuple[str, str, int, bool]  # sends that go out together: site, severity, step, whole


def _group(s: Send) -> Group:
    return (s.site, s.severity, s.key.step, s.key.whole)


_RANK = {"critical": 0, "major": 1, "minor": 2, "warning": 3}


def _rank(severity: str) -> int:
    return _RANK.get(severity, 9)


def default_policies(voice: tuple[str, ...], sms: tuple[str, ...]) -> dict[str, Policy]:
    """DESIGN section 7: critical -> SMS to the legal representative and safety manager at
    once; unacknowledged after 5 min -> voice call, and SMS to the bureau's duty officer;
    reminders every 10 min until acknowledged."""
    if not sms and not voice:
        return {}
    people = ("legal_representative", "safety_manager")
    critical: list[Step] = []
    if sms:
        critical.append(Step(0.0, people, sms))
    if voice:
        critical.append(Step(300.0, people, voice, repeat_every_s=600.0))
    if sms:
        critical.append(Step(300.0, ("bureau_duty",), sms))
    major = (Step(0.0, ("safety_manager",), sms),) if sms else ()
    return {"critical": tuple(critical), "major": major}


def policies_from_config(notify: NotifySection) -> dict[str, Policy]:
    """Configured steps per severity; severities not configured fall back to the default
    policy when `default_policy` is on (DESIGN section 7)."""
    policies: dict[str, Policy] = {}
    if notify.default_policy:
        policies.update(default_policies(tuple(notify.voice_channels), tuple(notify.sms_channels)))
    for severity, steps in notify.policies.items():
        policies[severity] = tuple(
            Step(
                after_s=s.after,
                roles=tuple(r.value for r in s.to),
                channels=tuple(s.channels),
                repeat_every_s=s.repeat_every,
                max_repeats=s.max_repeats,
            )
            for s in steps
        )
    return policies
