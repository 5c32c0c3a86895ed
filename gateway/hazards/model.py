"""A hazard and its life, as values and pure decisions: no clock (callers pass `now`), no I/O.

The closed loop (seed 002): open → rectifying → awaiting_verification → closed, or back to
rectifying when the on-site check fails. Only the bureau verifies a major hazard; the
institution may close a general one itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum


class HazardLevel(StrEnum):
    GENERAL = "general"
    MAJOR = "major"


class HazardStatus(StrEnum):
    OPEN = "open"
    RECTIFYING = "rectifying"
    AWAITING_VERIFICATION = "awaiting_verification"
    CLOSED = "closed"


class HazardSource(StrEnum):
    INSPECTION = "inspection"
    VALVE_FAILURE = "valve_failure"
    DEVICE_OFFLINE = "device_offline"
    FALSE_ALARMS = "false_alarms"
    ELECTRICAL_ALARM = "electrical_alarm"
    OTHER = "other"


LEVEL_LABELS = {HazardLevel.GENERAL: "一般", HazardLevel.MAJOR: "重大"}
STATUS_LABELS = {
    HazardStatus.OPEN: "待整改",
    HazardStatus.RECTIFYING: "整改中",
    HazardStatus.AWAITING_VERIFICATION: "待核查",
    HazardStatus.CLOSED: "已销号",
}


class HazardAction(StrEnum):
    """What a timeline entry records: the finding, or the step it took."""

    FOUND = "found"
    START = "start"  # open → rectifying
    RECTIFIED = "rectified"  # rectifying → awaiting_verification
    VERIFIED = "verified"  # awaiting_verification → closed
    VERIFICATION_FAILED = "verification_failed"  # awaiting_verification → rectifying
    EDITED = "edited"  # fields corrected; the status stays where it was


# Every step the loop allows, and what it is called on the timeline.
_STEPS: dict[tuple[HazardStatus, HazardStatus], HazardAction] = {
    (HazardStatus.OPEN, HazardStatus.RECTIFYING): HazardAction.START,
    (HazardStatus.RECTIFYING, HazardStatus.AWAITING_VERIFICATION): HazardAction.RECTIFIED,
    (HazardStatus.AWAITING_VERIFICATION, HazardStatus.CLOSED): HazardAction.VERIFIED,
    (HazardStatus.AWAITING_VERIFICATION, HazardStatus.RECTIFYING): (
        HazardAction.VERIFICATION_FAILED
    ),
}


@dataclass(frozen=True, slots=True)
class HazardEvent:
    """One step on a hazard's own timeline, with the person and the time."""

    at: float
    action: HazardAction
    actor: str
    from_status: HazardStatus | None  # None: the finding
    to_status: HazardStatus
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Hazard:
    id: int
    site: str
    location: str
    description: str
    level: HazardLevel
    source: HazardSource
    found_at: float
    found_by: str
    responsible: str
    measure: str
    deadline: float | None  # epoch seconds; None: no deadline set
    status: HazardStatus = HazardStatus.OPEN
    alarm_id: str | None = None  # the alarm the gateway suggested it from
    closed_at: float | None = None
    verified_by: str | None = None
    verified_at: float | None = None
    verification_note: str | None = None


class Refusal(StrEnum):
    """Why a step is refused: the loop has no such step (the API's 409), or it is not the
    caller's to take (403)."""

    NOT_IN_LOOP = "not_in_loop"
    BUREAU_VERIFIES = "bureau_verifies"  # a major hazard's on-site check
    INSTITUTION_RECTIFIES = "institution_rectifies"  # the bureau checks, it does not rectify
    CLOSED = "closed"  # a closed hazard is off the ledger's work: its record stands (409)
    BUREAU_SETS_LEVEL = "bureau_sets_level"  # the level decides who verifies (403)


class TransitionRefused(Exception):
    """A step the loop or the caller's role does not allow: `reason` says which, `detail` in
    words a person can act on. Retrying the same step never helps."""

    def __init__(self, hazard: Hazard, to: HazardStatus, reason: Refusal, detail: str) -> None:
        super().__init__(f"hazard {hazard.id}: {hazard.status.value} → {to.value}: {detail}")
        self.reason = reason
        self.detail = detail


def transition(
    h: Hazard,
    to: HazardStatus,
    actor_role_is_bureau: bool,
    *,
    actor: str,
    now: float,
    note: str | None = None,
) -> tuple[Hazard, HazardEvent]:
    """The hazard after the step to `to` and the timeline entry that records it, or
    `TransitionRefused`. The on-site check (leaving awaiting_verification either way) of a
    major hazard is the bureau's alone (seed 002: 完成整改的开展现场核查); the bureau takes
    no other step: rectifying is the institution's."""
    # Whose step it is comes first: a refusal for the role holds whatever the target.
    verifying = h.status is HazardStatus.AWAITING_VERIFICATION
    if verifying and h.level is HazardLevel.MAJOR and not actor_role_is_bureau:
        raise TransitionRefused(
            h, to, Refusal.BUREAU_VERIFIES, "only the bureau verifies a major hazard"
        )
    if actor_role_is_bureau and not verifying:
        raise TransitionRefused(
            h, to, Refusal.INSTITUTION_RECTIFIES, "the institution rectifies; the bureau verifies"
        )
    action = _STEPS.get((h.status, to))
    if action is None:
        allowed = [b.value for a, b in _STEPS if a is h.status]
        then = f"from {h.status.value} only to {', '.join(allowed)}" if allowed else "it is closed"
        raise TransitionRefused(h, to, Refusal.NOT_IN_LOOP, f"not a step of the loop: {then}")
    changed = replace(h, status=to)
    if verifying:
        changed = replace(changed, verified_by=actor, verified_at=now, verification_note=note)
    if to is HazardStatus.CLOSED:
        changed = replace(changed, closed_at=now)
    return changed, HazardEvent(now, action, actor, h.status, to, note)


@dataclass(frozen=True, slots=True)
class HazardEdit:
    """The fields a person corrects after the finding; None: left as it is. A deadline is
    moved, never removed (the rectification has a 整改期限)."""

    location: str | None = None
    description: str | None = None
    responsible: str | None = None
    measure: str | None = None
    deadline: float | None = None
    level: HazardLevel | None = None


# The timeline's words for each field, in the order a note lists them.
EDIT_LABELS = {
    "location": "位置",
    "description": "隐患描述",
    "responsible": "责任人",
    "measure": "整改措施",
    "deadline": "整改期限",
    "level": "隐患等级",
}


class EditRefused(Exception):
    """An edit the hazard's state or the caller's role does not allow (`reason`, `detail`).
    Retrying the same edit never helps."""

    def __init__(self, hazard: Hazard, reason: Refusal, detail: str) -> None:
        super().__init__(f"hazard {hazard.id}: edit refused: {detail}")
        self.reason = reason
        self.detail = detail


def edit(
    h: Hazard,
    changes: HazardEdit,
    actor_role_is_bureau: bool,
    *,
    actor: str,
    now: float,
    time_text: Callable[[float | None], str],
) -> tuple[Hazard, HazardEvent | None]:
    """The hazard with `changes` and the timeline entry that records them (`field: old → new`
    per changed field, `time_text` writing a deadline), or `EditRefused`. Nothing that
    differs: the hazard as it was and no entry. The level is the bureau's alone: a major
    hazard is verified by the bureau, so an institution lowering it would verify it itself."""
    if h.status is HazardStatus.CLOSED:
        raise EditRefused(h, Refusal.CLOSED, "the hazard is closed: its record is not edited")
    if changes.level is not None and changes.level is not h.level and not actor_role_is_bureau:
        raise EditRefused(
            h,
            Refusal.BUREAU_SETS_LEVEL,
            "only the bureau changes a hazard's level (a major hazard is verified by the bureau)",
        )
    lines: list[str] = []
    changed = h
    for field, label in EDIT_LABELS.items():
        new = getattr(changes, field)
        old = getattr(h, field)
        if new is None or new == old:
            continue
        changed = replace(changed, **{field: new})
        if field == "deadline":
            lines.append(f"{label}: {time_text(old)} → {time_text(new)}")
        elif field == "level":
            lines.append(f"{label}: {LEVEL_LABELS[old]} → {LEVEL_LABELS[new]}")
        else:
            lines.append(f"{label}: {old} → {new}")
    if not lines:
        return h, None
    note = "\n".join(lines)
    return changed, HazardEvent(now, HazardAction.EDITED, actor, h.status, h.status, note)


def overdue(h: Hazard, now: float) -> bool:
    """Past its deadline and not rectified yet: awaiting the check is the bureau's wait, not
    the institution's delay."""
    return (
        h.deadline is not None
        and now > h.deadline
        and h.status in (HazardStatus.OPEN, HazardStatus.RECTIFYING)
    )


def notice_number(year: int, seq: int) -> str:
    """The number printed on a notice: sequential per year (整改〔2026〕第3号)."""
    return f"整改〔{year}〕第{seq}号"


class NoticeState(StrEnum):
    ISSUED = "issued"
    RECEIVED = "received"  # the institution acknowledged it
    CLOSED = "closed"  # every hazard it names is closed (闭环式销账)


@dataclass(frozen=True, slots=True)
class Notice:
    """A rectification notice (整改通知书): the bureau's demand to one site about some of its
    hazards."""

    id: int
    number: str
    site: str
    issued_at: float
    issued_by: str
    person_in_charge: str
    deadline: float | None
    requirements: str
    hazard_ids: tuple[int, ...]
    received_at: float | None = None
    received_by: str | None = None
    closed_at: float | None = None

    @property
    def state(self) -> NoticeState:
        if self.closed_at is not None:
            return NoticeState.CLOSED
        if self.received_at is not None:
            return NoticeState.RECEIVED
        return NoticeState.ISSUED
