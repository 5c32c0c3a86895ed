"""Unit tests for rules/co.py: the EN 50291-1 time-weighted CO dose.

Time is a plain float passed as `now`: no sleeps, no real clock.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import co, defaults
from rules.co import CoRule, CoState
from rules.model import ChangeKind, Reason

RULE = defaults.CO
T0 = 1_700_000_000.0
HOLD = 180.0  # a CO detector's stale window: 60 s report interval x 3


def simulate(
    ppm: float,
    interval: float,
    duration: float,
    tick: float | None = None,
    st0: CoState | None = None,
    start: float = T0,
) -> tuple[CoState, list[tuple[float, ChangeKind]]]:
    """Measure constant `ppm` every `interval` s for `duration` s from `start`, optionally
    advancing on `tick` in between; return the end state and (offset, change) pairs."""
    state = st0 if st0 is not None else CoState(measured_at=start, integrated_to=start)
    got: list[tuple[float, ChangeKind]] = []
    events: list[tuple[float, bool]] = []
    n = int(duration // interval)
    events += [(i * interval, True) for i in range(n + 1)]
    if tick is not None:
        m = int(duration // tick)
        events += [(j * tick + tick / 2, False) for j in range(m)]
    events.sort()
    for t, is_measure in events:
        if is_measure:
            s = co.measure(RULE, state, ppm, start + t, HOLD)
        else:
            s = co.advance(RULE, state, start + t, True, HOLD)
        state = s.state
        if s.change is not None:
            got.append((t, s.change))
    return state, got


def first_raise(got: list[tuple[float, ChangeKind]]) -> float | None:
    for t, kind in got:
        if kind is ChangeKind.RAISE:
            return t
    return None


# --------------------------------------------------------------------------- the curve


@pytest.mark.parametrize(
    ("ppm", "seconds"),
    [
        (0.0, math.inf),
        (30.0, math.inf),
        (49.99, math.inf),
        (50.0, 75 * 60.0),
        (100.0, 25 * 60.0),
        (300.0, 90.0),
        (600.0, 45.0),
        (900.0, 30.0),
        (5000.0, 30.0),  # never faster than min_alarm_time_s
    ],
)
def test_time_to_alarm_points(ppm: float, seconds: float) -> None:
    assert RULE.time_to_alarm(ppm) == pytest.approx(seconds)


def test_time_to_alarm_interpolates_between_points() -> None:
    t70 = RULE.time_to_alarm(70.0)
    t200 = RULE.time_to_alarm(200.0)
    assert 25 * 60 < t70 < 75 * 60
    assert 90 < t200 < 25 * 60
    # log-log: the geometric middle of 50 and 100 ppm is the geometric middle in time
    assert RULE.time_to_alarm(math.sqrt(50 * 100)) == pytest.approx(math.sqrt(4500 * 1500))


def test_time_to_alarm_is_monotonic_on_a_grid() -> None:
    ppms = [p / 4 for p in range(0, 4 * 2000)]
    times = [RULE.time_to_alarm(p) for p in ppms]
    assert all(a >= b for a, b in itertools.pairwise(times))


@settings(max_examples=500, deadline=None)
@given(
    a=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    b=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
)
def test_time_to_alarm_never_rises_with_concentration(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert RULE.time_to_alarm(lo) >= RULE.time_to_alarm(hi)
    assert RULE.time_to_alarm(hi) >= RULE.min_alarm_time_s


# --------------------------------------------------------------------------- EN 50291-1 points


@pytest.mark.parametrize("interval", [10.0, 60.0])
@pytest.mark.parametrize("tick", [None, 1.0])
@pytest.mark.parametrize(
    ("ppm", "earliest", "latest"),
    [
        (30.0, None, None),  # no alarm within 120 min
        (50.0, 60 * 60.0, 90 * 60.0),
        (100.0, 10 * 60.0, 40 * 60.0),
        (300.0, 0.0, 3 * 60.0),
    ],
)
def test_en50291_response_points(
    ppm: float, earliest: float | None, latest: float | None, interval: float, tick: float | None
) -> None:
    _, got = simulate(ppm, interval, 120 * 60.0, tick=tick)
    raised = first_raise(got)
    if earliest is None:
        assert raised is None, got
        return
    assert raised is not None, f"{ppm} ppm never alarmed"
    assert latest is not None
    assert earliest <= raised <= latest
    # raised when the dose reached 1, not later than one sample/tick after it
    step = tick if tick is not None else interval
    assert RULE.time_to_alarm(ppm) <= raised + 1e-6
    assert raised <= RULE.time_to_alarm(ppm) + step
    assert [k for _, k in got].count(ChangeKind.RAISE) == 1


def test_raise_carries_the_reason_and_peak() -> None:
    state = CoState(measured_at=T0, integrated_to=T0)
    state = co.measure(RULE, state, 300.0, T0, HOLD).state
    s = co.measure(RULE, state, 320.0, T0 + 100, HOLD)
    assert s.change is ChangeKind.RAISE
    assert s.reason is Reason.CO_DOSE_REACHED
    assert s.state.active
    assert s.state.peak == 320.0
    s2 = co.measure(RULE, s.state, 400.0, T0 + 110, HOLD)
    assert s2.change is ChangeKind.PEAK
    assert s2.reason is Reason.NEW_PEAK
    s3 = co.measure(RULE, s2.state, 350.0, T0 + 120, HOLD)
    assert s3.change is None


# --------------------------------------------------------------------------- clearing


def _alarmed() -> CoState:
    state, got = simulate(300.0, 10.0, 100.0)
    assert state.active, got
    return state


@pytest.mark.parametrize(
    ("values", "cleared_at"),
    [
        # (offset after the alarm, ppm)
        ([(10, 29), (40, 29), (69.9, 29)], None),
        ([(10, 29), (70, 29)], 70),
        ([(10, 0), (30, 10), (70, 5)], 70),
        ([(10, 30), (70, 30), (200, 30)], None),  # not *below* clear_below
        ([(10, 45), (400, 45)], None),
        # bouncing back to clear_below or above restarts the off-delay
        ([(10, 29), (50, 35), (60, 29), (110, 29)], None),
        ([(10, 29), (50, 35), (60, 29), (120, 29)], 120),
    ],
)
def test_clears_only_after_staying_below_clear_below(
    values: list[tuple[float, float]], cleared_at: float | None
) -> None:
    assert RULE.clear_below_ppm == 30.0
    assert RULE.off_delay_s == 60.0
    state = _alarmed()
    base = state.measured_at
    got = []
    for dt, ppm in values:
        s = co.measure(RULE, state, ppm, base + dt, HOLD)
        state = s.state
        if s.change is not None:
            got.append((dt, s.change))
    if cleared_at is None:
        assert got == [] or all(k is ChangeKind.PEAK for _, k in got)
        assert state.active
    else:
        assert got == [(cleared_at, ChangeKind.CLEAR)]
        assert not state.active
        assert state.dose == 0.0


@pytest.mark.parametrize(
    ("advance_to", "fresh", "cleared"),
    [
        (59.0, True, False),
        (60.0, True, True),
        (60.0, False, False),
        (10_000.0, False, False),
    ],
)
def test_advance_clears_only_on_a_fresh_low_value(
    advance_to: float, fresh: bool, cleared: bool
) -> None:
    state = _alarmed()
    base = state.measured_at + 10
    state = co.measure(RULE, state, 5.0, base, HOLD).state
    assert state.clearing_since == base
    s = co.advance(RULE, state, base + advance_to, fresh, HOLD)
    if cleared:
        assert s.change is ChangeKind.CLEAR
        assert s.reason is Reason.RETURNED_TO_NORMAL
    else:
        assert s.change is None
        assert s.state.active


def test_after_a_clear_the_full_dose_is_needed_again() -> None:
    state = _alarmed()
    base = state.measured_at
    state = co.measure(RULE, state, 0.0, base + 10, HOLD).state
    s = co.measure(RULE, state, 0.0, base + 70, HOLD)
    assert s.change is ChangeKind.CLEAR
    _, got = simulate(300.0, 10.0, 300.0, st0=s.state, start=base + 80)
    raised = first_raise(got)
    assert raised is not None
    assert raised >= 80  # ~90 s of 300 ppm again, not immediately


def test_a_stale_low_value_does_not_clear_after_the_silence() -> None:
    """The off-delay is only served by values known to be low: a low value, silence longer
    than the hold limit, then one more low value must not clear at once."""
    state = _alarmed()
    base = state.measured_at
    state = co.measure(RULE, state, 5.0, base + 10, HOLD).state
    s = co.advance(RULE, state, base + 5000, False, HOLD)
    assert s.change is None
    s = co.measure(RULE, s.state, 5.0, base + 5000, HOLD)
    assert s.change is None
    assert s.state.active
    s = co.measure(RULE, s.state, 5.0, base + 5060, HOLD)
    assert s.change is ChangeKind.CLEAR


# --------------------------------------------------------------------------- stale values


def test_a_stale_value_stops_accumulating_dose() -> None:
    state = CoState(measured_at=T0, integrated_to=T0)
    state = co.measure(RULE, state, 100.0, T0, HOLD).state
    for now in (T0 + 60, T0 + 180, T0 + 181, T0 + 5000, T0 + 100_000):
        s = co.advance(RULE, state, now, True, HOLD)
        assert s.change is None
        assert s.state.dose == pytest.approx(min(now - T0, HOLD) / 1500.0)
    # the next measurement after the silence does not back-fill the gap either
    s = co.measure(RULE, state, 100.0, T0 + 100_000, HOLD)
    assert s.state.dose == pytest.approx(HOLD / 1500.0)
    assert s.change is None
    assert s.state.integrated_to == T0 + 100_000


def test_a_single_high_value_then_silence_never_alarms() -> None:
    state = CoState(measured_at=T0, integrated_to=T0)
    state = co.measure(RULE, state, 300.0, T0, 60.0).state  # held 60 s of the 90 s needed
    for k in range(1, 200):
        s = co.advance(RULE, state, T0 + k * 10, True, 60.0)
        assert s.change is None
        state = s.state
    assert state.dose == pytest.approx(60.0 / 90.0)
    assert not state.active


def test_advance_without_fresh_value_changes_nothing() -> None:
    state = CoState(measured_at=T0, integrated_to=T0)
    state = co.measure(RULE, state, 300.0, T0, HOLD).state
    s = co.advance(RULE, state, T0 + 150, False, HOLD)
    assert s.state == state
    assert s.change is None


def test_no_value_yet_means_nothing_happens() -> None:
    state = CoState(measured_at=T0, integrated_to=T0)
    s = co.advance(RULE, state, T0 + 10_000, True, HOLD)
    assert s.state == state
    assert s.change is None


def test_dose_decays_below_the_curve() -> None:
    state = CoState(measured_at=T0, integrated_to=T0)
    state = co.measure(RULE, state, 100.0, T0, HOLD).state
    state = co.measure(RULE, state, 0.0, T0 + 150, HOLD).state  # dose 0.1
    assert state.dose == pytest.approx(0.1)
    for k in range(1, 121):  # 20 min of clean air, sampled every 10 s: one half-life
        state = co.measure(RULE, state, 0.0, T0 + 150 + 10 * k, HOLD).state
    assert state.dose == pytest.approx(0.05)


# --------------------------------------------------------------------------- restore, rule


def test_restored_alarm_clears_after_low_values() -> None:
    state = co.restored(T0)
    assert state.active
    got = []
    for k in range(0, 10):
        s = co.measure(RULE, state, 10.0, T0 + 5 + 10 * k, HOLD)
        state = s.state
        if s.change is not None:
            got.append((5 + 10 * k, s.change))
    assert got == [(65, ChangeKind.CLEAR)]


def test_restored_alarm_stays_while_high() -> None:
    state = co.restored(T0)
    kinds = []
    for k in range(0, 100):
        s = co.measure(RULE, state, 40.0, T0 + 10 * k, HOLD)
        state = s.state
        kinds.append(s.change)
    assert ChangeKind.RAISE not in kinds
    assert ChangeKind.CLEAR not in kinds
    assert state.active


@pytest.mark.parametrize(
    "kw",
    [
        {"curve": ((100.0, 1500.0), (50.0, 4500.0))},
        {"curve": ((50.0, 1500.0), (100.0, 4500.0))},
        {"clear_below_ppm": 60.0},
    ],
)
def test_invalid_co_rules_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="CO"):
        CoRule(**kw)  # type: ignore[arg-type]
