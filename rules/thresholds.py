"""Threshold condition with levels, deadband (hysteresis), on-delay and off-delay.

Pure: `step(rule, condition, value, now)` returns the next condition and what changed.
A condition only moves on a *measurement*; `tick` moves it on time alone, and only when
the caller says the last measurement is still fresh, because a stale value must never
raise or clear anything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from rules.model import PHYSICAL_RANGE, AlarmType, ChangeKind, Reason, Severity


@dataclass(frozen=True, slots=True)
class Level:
    name: str
    at: float
    severity: Severity


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """A high-threshold rule on one quantity.

    `quantity` is a canonical name; `temp_c` covers every `temp_c_N` channel (worst one).
    Levels are sorted by `at`; the alarm clears only when the value falls below the
    lowest level minus `deadband` and stays there for `off_delay_s`.
    """

    alarm: AlarmType
    quantity: str
    levels: tuple[Level, ...]
    deadband: float
    on_delay_s: float
    off_delay_s: float
    shutoff_level: str | None = None  # gas: reaching this level closes the linked valve

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError(f"{self.alarm}: a threshold rule needs at least one level")
        ats = [lv.at for lv in self.levels]
        if ats != sorted(ats) or len(set(ats)) != len(ats):
            raise ValueError(f"{self.alarm}: levels must rise strictly: {ats}")
        if self.deadband < 0 or self.on_delay_s < 0 or self.off_delay_s < 0:
            raise ValueError(f"{self.alarm}: deadband and delays must not be negative")
        if self.deadband >= self.levels[0].at - _lowest_possible(self.quantity):
            # A deadband that reaches below any possible value would never clear.
            raise ValueError(f"{self.alarm}: deadband {self.deadband} leaves no way to clear")
        if self.shutoff_level is not None and self.level_index(self.shutoff_level) is None:
            raise ValueError(f"{self.alarm}: shut-off level {self.shutoff_level!r} is not a level")

    def level_index(self, name: str) -> int | None:
        for i, lv in enumerate(self.levels):
            if lv.name == name:
                return i
        return None

    def level_for(self, value: float) -> int:
        """Index of the highest level reached by `value`; -1 when none."""
        index = -1
        for i, lv in enumerate(self.levels):
            if value >= lv.at:
                index = i
        return index

    @property
    def clear_below(self) -> float:
        return self.levels[0].at - self.deadband


def _lowest_possible(quantity: str) -> float:
    # The lowest value a reading can carry: drivers reject anything below PHYSICAL_RANGE.
    return PHYSICAL_RANGE["temp_c"][0] if quantity == "temp_c" else 0.0


class Phase(Enum):
    NORMAL = "normal"
    PENDING = "pending"  # above a level, waiting out the on-delay
    ACTIVE = "active"
    CLEARING = "clearing"  # below clear_below, waiting out the off-delay


@dataclass(frozen=True, slots=True)
class Condition:
    phase: Phase = Phase.NORMAL
    since: float = 0.0
    level: int = -1  # highest level reached while active (never falls while open)
    peak: float | None = None

    @property
    def abnormal(self) -> bool:
        return self.phase in (Phase.ACTIVE, Phase.CLEARING)


NORMAL = Condition()


@dataclass(frozen=True, slots=True)
class Step:
    condition: Condition
    change: ChangeKind | None = None
    reason: Reason | None = None

    def level_name(self, rule: ThresholdRule) -> str | None:
        lv = self.condition.level
        return rule.levels[lv].name if lv >= 0 else None

    def severity(self, rule: ThresholdRule) -> Severity:
        return rule.levels[max(self.condition.level, 0)].severity


# The usual answer (a normal value, nothing under way), made once: Step is immutable.
_STAYS_NORMAL = Step(NORMAL)


def step(rule: ThresholdRule, cond: Condition, value: float, now: float) -> Step:
    """Advance `cond` with a fresh measurement `value` taken at `now`."""
    reached = rule.level_for(value)
    if cond.phase is Phase.NORMAL:
        if reached < 0:
            return _STAYS_NORMAL if cond is NORMAL else Step(cond)
        pending = Condition(Phase.PENDING, now, reached, value)
        if rule.on_delay_s <= 0:
            return _raise(pending, now)
        return Step(pending)

    if cond.phase is Phase.PENDING:
        if reached < 0:
            return Step(NORMAL)  # it never became an alarm: no change to report
        peak = max(cond.peak or value, value)
        pending = replace(cond, level=max(cond.level, reached), peak=peak)
        if now - cond.since >= rule.on_delay_s:
            return _raise(pending, now)
        return Step(pending)

    # ACTIVE or CLEARING
    if value < rule.clear_below:
        clearing = (
            cond if cond.phase is Phase.CLEARING else replace(cond, phase=Phase.CLEARING, since=now)
        )
        if now - clearing.since >= rule.off_delay_s:
            return Step(NORMAL, ChangeKind.CLEAR, Reason.RETURNED_TO_NORMAL)
        return Step(clearing)

    active = replace(cond, phase=Phase.ACTIVE) if cond.phase is Phase.CLEARING else cond
    if reached > active.level:
        return Step(
            replace(active, level=reached, peak=max(active.peak or value, value)),
            ChangeKind.ESCALATE,
            Reason.LEVEL_RAISED,
        )
    if active.peak is None or value > active.peak:
        return Step(replace(active, peak=value), ChangeKind.PEAK, Reason.NEW_PEAK)
    return Step(active)


def tick(rule: ThresholdRule, cond: Condition, now: float, fresh: bool) -> Step:
    """Advance `cond` on time alone: delays run out only while the last value is fresh."""
    if not fresh:
        return Step(cond)
    if cond.phase is Phase.PENDING and now - cond.since >= rule.on_delay_s:
        return _raise(cond, now)
    if cond.phase is Phase.CLEARING and now - cond.since >= rule.off_delay_s:
        return Step(NORMAL, ChangeKind.CLEAR, Reason.RETURNED_TO_NORMAL)
    return Step(cond)


def restored(rule: ThresholdRule, level_name: str | None, now: float) -> Condition:
    """An alarm reloaded from the store is active until a fresh measurement says otherwise."""
    index = rule.level_index(level_name) if level_name else None
    return Condition(Phase.ACTIVE, now, index if index is not None else 0, None)


def _raise(cond: Condition, now: float) -> Step:
    return Step(
        Condition(Phase.ACTIVE, now, cond.level, cond.peak),
        ChangeKind.RAISE,
        Reason.THRESHOLD_EXCEEDED,
    )
