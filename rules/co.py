"""Time-weighted carbon-monoxide rule after the household CO alarm curve (EN 50291-1).

EN 50291-1 response requirements, constant concentration:
  30 ppm  no alarm for 120 min
  50 ppm  alarm between 60 and 90 min
  100 ppm alarm between 10 and 40 min
  300 ppm alarm within 3 min

We model this as a dose: each interval `dt` spent at concentration `c` adds `dt / T(c)`,
where `T(c)` is the time to alarm at constant `c` (75 min at 50 ppm, 25 min at 100 ppm,
90 s at 300 ppm, log-log interpolated between the points). The alarm is raised when the
dose reaches 1. Below the first curve point nothing accumulates and the dose decays,
as carboxyhaemoglobin does once the air clears. A value is held between readings only
while it is fresh: an unknown concentration neither adds dose nor lets it decay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from rules.model import ChangeKind, Reason


@dataclass(frozen=True, slots=True)
class CoRule:
    curve: tuple[tuple[float, float], ...] = ((50.0, 75 * 60.0), (100.0, 25 * 60.0), (300.0, 90.0))
    clear_below_ppm: float = 30.0
    off_delay_s: float = 60.0
    decay_half_life_s: float = 20 * 60.0
    min_alarm_time_s: float = 30.0

    def __post_init__(self) -> None:
        ppms = [p for p, _ in self.curve]
        times = [t for _, t in self.curve]
        if not self.curve or ppms != sorted(ppms) or times != sorted(times, reverse=True):
            raise ValueError("CO curve must rise in ppm and fall in time")
        if self.clear_below_ppm > ppms[0]:
            raise ValueError("CO alarm must clear below the first curve point")

    def time_to_alarm(self, ppm: float) -> float:
        """Seconds to alarm at a constant `ppm`; infinite below the curve."""
        if ppm < self.curve[0][0]:
            return math.inf
        for (p0, t0), (p1, t1) in zip(self.curve, self.curve[1:], strict=False):
            if p0 <= ppm <= p1:
                # log-log interpolation: the curve is close to a power law
                f = (math.log(ppm) - math.log(p0)) / (math.log(p1) - math.log(p0))
                return math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0)))
        last_ppm, last_t = self.curve[-1]
        return max(self.min_alarm_time_s, last_t * last_ppm / ppm)


@dataclass(frozen=True, slots=True)
class CoState:
    dose: float = 0.0
    ppm: float | None = None  # last measured concentration
    measured_at: float = 0.0
    integrated_to: float = 0.0
    active: bool = False
    clearing_since: float | None = None
    peak: float | None = None


@dataclass(frozen=True, slots=True)
class CoStep:
    state: CoState
    change: ChangeKind | None = None
    reason: Reason | None = None


def integrate(rule: CoRule, st: CoState, until: float, hold_limit: float) -> CoState:
    """Accumulate dose for the last value, held no longer than `hold_limit` after it."""
    if st.ppm is None:
        return st
    end = min(until, st.measured_at + hold_limit)
    if end <= st.integrated_to:
        return st
    dt = end - st.integrated_to
    t_alarm = rule.time_to_alarm(st.ppm)
    if math.isinf(t_alarm):
        dose = st.dose * 0.5 ** (dt / rule.decay_half_life_s)
    else:
        dose = st.dose + dt / t_alarm
    return replace(st, dose=dose, integrated_to=end)


def measure(rule: CoRule, st: CoState, ppm: float, now: float, hold_limit: float) -> CoStep:
    """A fresh measurement at `now`: integrate the previous value up to now, then decide."""
    st = integrate(rule, st, now, hold_limit)
    if st.clearing_since is not None and now - st.measured_at > hold_limit:
        # The previous low value went stale: nothing says the air stayed clean meanwhile,
        # so the off-delay starts again from this measurement.
        st = replace(st, clearing_since=None)
    st = replace(st, ppm=ppm, measured_at=now, integrated_to=max(st.integrated_to, now))
    return _decide(rule, st, now)


def advance(rule: CoRule, st: CoState, now: float, fresh: bool, hold_limit: float) -> CoStep:
    """Time passes without a measurement: only a fresh value may raise or clear."""
    if not fresh:
        return CoStep(st)
    return _decide(rule, integrate(rule, st, now, hold_limit), now)


def _decide(rule: CoRule, st: CoState, now: float) -> CoStep:
    ppm = st.ppm
    if ppm is None:
        return CoStep(st)
    if not st.active:
        if st.dose >= 1.0:
            return CoStep(
                replace(st, active=True, clearing_since=None, peak=ppm),
                ChangeKind.RAISE,
                Reason.CO_DOSE_REACHED,
            )
        return CoStep(st)
    if ppm < rule.clear_below_ppm:
        since = st.clearing_since if st.clearing_since is not None else now
        if now - since >= rule.off_delay_s:
            return CoStep(
                replace(st, active=False, clearing_since=None, dose=0.0, peak=None),
                ChangeKind.CLEAR,
                Reason.RETURNED_TO_NORMAL,
            )
        return CoStep(replace(st, clearing_since=since))
    st = replace(st, clearing_since=None)
    if st.peak is None or ppm > st.peak:
        return CoStep(replace(st, peak=ppm), ChangeKind.PEAK, Reason.NEW_PEAK)
    return CoStep(st)


def restored(now: float) -> CoState:
    """A CO alarm reloaded from the store stays active until a fresh low value clears it."""
    return CoState(dose=1.0, ppm=None, measured_at=now, integrated_to=now, active=True)
