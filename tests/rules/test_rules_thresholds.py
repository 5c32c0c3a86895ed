"""Unit tests for rules/thresholds.py: levels, deadband, on-delay, off-delay, escalation.

Time is a plain float passed as `now`: no sleeps, no real clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import defaults
from rules import thresholds as th
from rules.model import AlarmType, ChangeKind, Reason, Severity
from rules.thresholds import NORMAL, Condition, Level, Phase, Step, ThresholdRule

GAS = defaults.GAS_LEAK  # pre_alarm 10, level_1 20, level_2 50, deadband 2, off 30 s
RCD = defaults.RESIDUAL_CURRENT  # 300 mA, deadband 30, on 10 s, off 30 s
TEMP = defaults.OVERTEMPERATURE  # 70 C, deadband 5, on 10 s, off 30 s

T0 = 1_700_000_000.0  # an epoch-like start: nothing may assume time starts at 0


def run(
    rule: ThresholdRule, samples: Iterable[tuple[float, float]], cond: Condition = NORMAL
) -> tuple[Condition, list[tuple[float, Step]]]:
    """Feed (time offset, value) samples through `step`; return the end state and every step."""
    steps: list[tuple[float, Step]] = []
    for dt, value in samples:
        s = th.step(rule, cond, value, T0 + dt)
        steps.append((dt, s))
        cond = s.condition
    return cond, steps


def changes(steps: list[tuple[float, Step]]) -> list[tuple[float, ChangeKind]]:
    return [(dt, s.change) for dt, s in steps if s.change is not None]


def kinds(steps: list[tuple[float, Step]]) -> list[ChangeKind]:
    return [s.change for _, s in steps if s.change is not None]


def active(rule: ThresholdRule, value: float, at: float = 0.0) -> Condition:
    """A condition already raised by `value` at T0 + at (rule must have on_delay 0)."""
    cond, steps = run(rule, [(at, value)])
    assert kinds(steps) == [ChangeKind.RAISE]
    return cond


# --------------------------------------------------------------------------- raise, on_delay 0


@pytest.mark.parametrize(
    ("value", "level", "severity"),
    [
        (-5.0, None, None),
        (0.0, None, None),
        (9.99, None, None),
        (10.0, "pre_alarm", Severity.WARNING),
        (19.99, "pre_alarm", Severity.WARNING),
        (20.0, "level_1", Severity.CRITICAL),
        (49.9, "level_1", Severity.CRITICAL),
        (50.0, "level_2", Severity.CRITICAL),
        (2000.0, "level_2", Severity.CRITICAL),
    ],
)
def test_gas_raises_at_once_at_the_level_reached(
    value: float, level: str | None, severity: Severity | None
) -> None:
    s = th.step(GAS, NORMAL, value, T0)
    if level is None:
        assert s.change is None
        assert s.condition.phase is Phase.NORMAL
        return
    assert s.change is ChangeKind.RAISE
    assert s.reason is Reason.THRESHOLD_EXCEEDED
    assert s.condition.phase is Phase.ACTIVE
    assert s.level_name(GAS) == level
    assert s.severity(GAS) is severity
    assert s.condition.peak == value
    assert s.condition.since == T0


# --------------------------------------------------------------------------- on-delay


@pytest.mark.parametrize(
    ("samples", "raised_at"),
    [
        # held above for the whole on-delay: raised on the sample that completes it
        ([(0, 400), (5, 400), (10, 400)], 10),
        ([(0, 400), (10, 400)], 10),
        ([(0, 300), (3, 350), (9.99, 320), (10.01, 310)], 10.01),
        # never held long enough
        ([(0, 400), (5, 400), (9.99, 400)], None),
        # dropped below the level (even inside the deadband) cancels the pending condition
        ([(0, 400), (5, 299), (10, 400), (15, 400)], None),
        ([(0, 400), (5, 299), (10, 400), (19.9, 400)], None),
        ([(0, 400), (5, 299), (10, 400), (20, 400)], 20),
        ([(0, 400), (9, 0), (10, 400)], None),
    ],
)
def test_on_delay_raises_only_after_the_value_stayed_above(
    samples: list[tuple[float, float]], raised_at: float | None
) -> None:
    cond, steps = run(RCD, samples)
    got = changes(steps)
    if raised_at is None:
        assert got == []
        assert not cond.abnormal
    else:
        assert got == [(raised_at, ChangeKind.RAISE)]
        assert cond.phase is Phase.ACTIVE


def test_pending_is_not_an_alarm_and_drops_silently() -> None:
    cond, steps = run(RCD, [(0, 400)])
    assert cond.phase is Phase.PENDING
    assert not cond.abnormal
    assert kinds(steps) == []
    s = th.step(RCD, cond, 100, T0 + 1)
    assert s.condition == NORMAL
    assert s.change is None  # it never became an alarm: nothing to clear


def test_pending_keeps_its_start_and_highest_level() -> None:
    rule = replace(GAS, on_delay_s=5.0)  # the gas levels, with an on-delay for this test
    cond, steps = run(rule, [(0, 12), (2, 25), (4, 15)])
    assert kinds(steps) == []
    assert cond.phase is Phase.PENDING
    assert cond.since == T0
    assert rule.levels[cond.level].name == "level_1"
    assert cond.peak == 25
    s = th.step(rule, cond, 14, T0 + 5)
    assert s.change is ChangeKind.RAISE
    assert s.level_name(rule) == "level_1"
    assert s.severity(rule) is Severity.CRITICAL


@pytest.mark.parametrize(
    ("tick_at", "fresh", "raised"),
    [
        (0.0, True, False),
        (9.99, True, False),
        (10.0, True, True),
        (500.0, True, True),
        (10.0, False, False),
        (500.0, False, False),
    ],
)
def test_tick_runs_out_the_on_delay_only_while_fresh(
    tick_at: float, fresh: bool, raised: bool
) -> None:
    cond, _ = run(RCD, [(0, 400)])
    s = th.tick(RCD, cond, T0 + tick_at, fresh)
    if raised:
        assert s.change is ChangeKind.RAISE
        assert s.reason is Reason.THRESHOLD_EXCEEDED
        assert s.condition.phase is Phase.ACTIVE
        assert s.condition.since == T0 + tick_at
    else:
        assert s.change is None
        assert s.condition == cond


# --------------------------------------------------------------------------- deadband


@pytest.mark.parametrize(
    ("low", "clears"),
    [
        (19.0, False),
        (10.0, False),
        (9.0, False),
        (8.0, False),  # exactly level - deadband is not below it
        (7.99, True),
        (0.0, True),
        (-3.0, True),
    ],
)
def test_deadband_no_clear_until_below_lowest_level_minus_deadband(
    low: float, clears: bool
) -> None:
    assert GAS.clear_below == 8.0
    cond = active(GAS, 25)
    samples = [(float(t), low) for t in range(1, 300)]
    cond, steps = run(GAS, samples, cond)
    if clears:
        assert changes(steps) == [(31.0, ChangeKind.CLEAR)]  # low since t=1, off-delay 30 s
        assert cond == NORMAL
    else:
        assert changes(steps) == []
        assert cond.abnormal


def test_deadband_for_temperature_and_residual_current() -> None:
    assert TEMP.clear_below == 65.0
    assert RCD.clear_below == 270.0
    for rule, inside, below in ((TEMP, 66.0, 64.0), (RCD, 280.0, 260.0)):
        cond, _ = run(rule, [(0, rule.levels[0].at), (10, rule.levels[0].at)])
        assert cond.phase is Phase.ACTIVE
        stay, steps = run(rule, [(float(t), inside) for t in range(11, 200)], cond)
        assert changes(steps) == []
        assert stay.phase is Phase.ACTIVE
        _, steps = run(rule, [(float(t), below) for t in range(11, 200)], cond)
        assert changes(steps) == [(41.0, ChangeKind.CLEAR)]


# --------------------------------------------------------------------------- off-delay


@pytest.mark.parametrize(
    ("samples", "cleared_at"),
    [
        ([(100, 5), (110, 5), (129.99, 5)], None),
        ([(100, 5), (130, 5)], 130),
        ([(100, 5), (115, 3), (130, 0)], 130),
        # bouncing back above clear_below (even below every level) cancels clearing
        ([(100, 5), (110, 9), (120, 5), (140, 5)], None),
        ([(100, 5), (110, 9), (120, 5), (150, 5)], 150),
        ([(100, 5), (129, 25), (130, 5), (159, 5)], None),
        ([(100, 5), (129, 25), (130, 5), (160, 5)], 160),
    ],
)
def test_off_delay_clears_only_after_staying_low(
    samples: list[tuple[float, float]], cleared_at: float | None
) -> None:
    cond = active(GAS, 25)
    cond, steps = run(GAS, samples, cond)
    if cleared_at is None:
        assert changes(steps) == []
        assert cond.abnormal
    else:
        assert changes(steps) == [(cleared_at, ChangeKind.CLEAR)]
        assert steps[-1][1].reason is Reason.RETURNED_TO_NORMAL
        assert cond == NORMAL


def test_clearing_is_still_abnormal_and_keeps_its_level() -> None:
    cond = active(GAS, 55)
    cond, _ = run(GAS, [(10, 1)], cond)
    assert cond.phase is Phase.CLEARING
    assert cond.abnormal
    assert GAS.levels[cond.level].name == "level_2"
    assert cond.since == T0 + 10


@pytest.mark.parametrize(
    ("tick_at", "fresh", "cleared"),
    [
        (10.0, True, False),
        (39.99, True, False),
        (40.0, True, True),
        (1000.0, True, True),
        (40.0, False, False),
        (1000.0, False, False),
    ],
)
def test_tick_runs_out_the_off_delay_only_while_fresh(
    tick_at: float, fresh: bool, cleared: bool
) -> None:
    cond = active(GAS, 25)
    cond, _ = run(GAS, [(10, 1)], cond)
    s = th.tick(GAS, cond, T0 + tick_at, fresh)
    if cleared:
        assert s.change is ChangeKind.CLEAR
        assert s.reason is Reason.RETURNED_TO_NORMAL
        assert s.condition == NORMAL
    else:
        assert s.change is None
        assert s.condition == cond


def test_tick_leaves_normal_and_active_alone() -> None:
    cond = active(GAS, 25)
    for now in (T0, T0 + 1, T0 + 10_000):
        for fresh in (True, False):
            assert th.tick(GAS, cond, now, fresh) == Step(cond)
            assert th.tick(GAS, NORMAL, now, fresh) == Step(NORMAL)


# --------------------------------------------------------------------------- escalation, peak


def test_escalation_from_pre_alarm_warning_to_level_1_critical() -> None:
    cond, steps = run(GAS, [(0, 12), (5, 25), (6, 15), (7, 60), (8, 55), (9, 61)])
    got = [(dt, s.change, s.level_name(GAS), s.severity(GAS)) for dt, s in steps if s.change]
    assert got == [
        (0, ChangeKind.RAISE, "pre_alarm", Severity.WARNING),
        (5, ChangeKind.ESCALATE, "level_1", Severity.CRITICAL),
        (7, ChangeKind.ESCALATE, "level_2", Severity.CRITICAL),
        (9, ChangeKind.PEAK, "level_2", Severity.CRITICAL),
    ]
    assert steps[1][1].reason is Reason.LEVEL_RAISED
    assert steps[5][1].reason is Reason.NEW_PEAK
    assert cond.peak == 61


def test_escalation_straight_from_clearing() -> None:
    cond = active(GAS, 12)
    cond, steps = run(GAS, [(1, 2), (2, 30)], cond)
    assert kinds(steps) == [ChangeKind.ESCALATE]
    assert cond.phase is Phase.ACTIVE
    assert GAS.levels[cond.level].name == "level_1"


def test_level_never_falls_while_the_alarm_is_open() -> None:
    cond = active(GAS, 55)
    cond, steps = run(GAS, [(1, 25), (2, 15), (3, 9), (4, 21)], cond)
    assert kinds(steps) == []
    assert GAS.levels[cond.level].name == "level_2"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([30, 28, 30, 31, 20, 31.5], [True, False, False, True, False, True]),
        ([25, 25, 25], [False, False, False]),
        ([24.9, 10, 9, 25.1], [False, False, False, True]),
        ([26, 27, 28], [True, True, True]),
    ],
)
def test_peak_only_on_a_new_maximum(values: list[float], expected: list[bool]) -> None:
    cond = active(GAS, 25)
    _, steps = run(GAS, [(float(i + 1), v) for i, v in enumerate(values)], cond)
    got = [s.change is ChangeKind.PEAK for _, s in steps]
    assert got == expected
    assert all(s.change in (None, ChangeKind.PEAK) for _, s in steps)


# --------------------------------------------------------------------------- flapping


def test_flapping_around_level_1_raises_once() -> None:
    samples = [(float(t), 21.0 if t % 2 == 0 else 19.0) for t in range(400)]
    cond, steps = run(GAS, samples)
    assert kinds(steps) == [ChangeKind.RAISE]
    assert steps[0][1].level_name(GAS) == "level_1"
    assert cond.phase is Phase.ACTIVE


def test_flapping_starting_below_level_1_raises_once_and_escalates_once() -> None:
    samples = [(float(t), 19.0 if t % 2 == 0 else 21.0) for t in range(400)]
    _, steps = run(GAS, samples)
    assert kinds(steps) == [ChangeKind.RAISE, ChangeKind.ESCALATE]


@pytest.mark.parametrize("with_ticks", [False, True])
def test_flapping_across_the_deadband_never_clears(with_ticks: bool) -> None:
    assert GAS.off_delay_s == 30.0
    cond = NORMAL
    seen: list[ChangeKind] = []
    for t in range(600):
        value = 21.0 if t % 2 == 0 else 7.0
        s = th.step(GAS, cond, value, T0 + t)
        cond = s.condition
        if s.change:
            seen.append(s.change)
        if with_ticks:
            s = th.tick(GAS, cond, T0 + t + 0.5, fresh=True)
            cond = s.condition
            if s.change:
                seen.append(s.change)
    assert seen == [ChangeKind.RAISE]
    assert cond.abnormal


# --------------------------------------------------------------------------- restored


@pytest.mark.parametrize(
    ("level", "index"), [("pre_alarm", 0), ("level_1", 1), ("level_2", 2), (None, 0), ("gone", 0)]
)
def test_restored_condition_is_active_and_clears_on_fresh_low_values(
    level: str | None, index: int
) -> None:
    cond = th.restored(GAS, level, T0)
    assert cond.phase is Phase.ACTIVE
    assert cond.level == index
    # still high: no new RAISE for an alarm that is already open
    _, steps = run(GAS, [(1, 25)], cond)
    assert ChangeKind.RAISE not in kinds(steps)
    cond, steps = run(GAS, [(float(t), 1.0) for t in range(1, 40)], cond)
    assert changes(steps) == [(31.0, ChangeKind.CLEAR)]
    assert cond == NORMAL


# --------------------------------------------------------------------------- validation


def _rule(**kw: object) -> ThresholdRule:
    base: dict[str, object] = {
        "alarm": AlarmType.GAS_LEAK,
        "quantity": "lel",
        "levels": (Level("a", 10.0, Severity.WARNING), Level("b", 20.0, Severity.CRITICAL)),
        "deadband": 2.0,
        "on_delay_s": 0.0,
        "off_delay_s": 30.0,
    }
    base.update(kw)
    return ThresholdRule(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"levels": ()}, "at least one level"),
        (
            {"levels": (Level("a", 20.0, Severity.WARNING), Level("b", 10.0, Severity.CRITICAL))},
            "rise strictly",
        ),
        (
            {"levels": (Level("a", 10.0, Severity.WARNING), Level("b", 10.0, Severity.CRITICAL))},
            "rise strictly",
        ),
        ({"deadband": -0.1}, "must not be negative"),
        ({"on_delay_s": -1.0}, "must not be negative"),
        ({"off_delay_s": -1.0}, "must not be negative"),
        ({"deadband": 10.0}, "no way to clear"),
        ({"deadband": 25.0}, "no way to clear"),
        ({"shutoff_level": "level_9"}, "not a level"),
        (
            {
                "alarm": AlarmType.OVERTEMPERATURE,
                "quantity": "temp_c",
                "levels": (Level("alarm", 70.0, Severity.MAJOR),),
                # clear_below -90 C: below the lowest temperature a reading can carry (-60 C)
                "deadband": 160.0,
            },
            "no way to clear",
        ),
        (
            {
                "alarm": AlarmType.RESIDUAL_CURRENT,
                "quantity": "residual_ma",
                "levels": (Level("alarm", 300.0, Severity.MAJOR),),
                "deadband": 300.0,
            },
            "no way to clear",
        ),
    ],
)
def test_invalid_rules_are_refused(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _rule(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"deadband": 0.0},
        {"deadband": 9.99},
        {"shutoff_level": "b"},
        {"shutoff_level": "a"},
        {
            "alarm": AlarmType.OVERTEMPERATURE,
            "quantity": "temp_c",
            "levels": (Level("alarm", 70.0, Severity.MAJOR),),
            "deadband": 100.0,  # clears below -30 C: unusual, but reachable
        },
    ],
)
def test_valid_rules_are_accepted(kw: dict[str, object]) -> None:
    rule = _rule(**kw)
    assert rule.clear_below <= rule.levels[0].at
    assert rule.clear_below > -60.0  # a reading can get there, so the alarm can clear


def test_defaults_are_valid_and_consistent() -> None:
    assert GAS.shutoff_level == "level_1"
    assert GAS.level_index("level_1") == 1
    assert GAS.level_index("nope") is None
    assert [GAS.level_for(v) for v in (0, 10, 19.9, 20, 50, 500)] == [-1, 0, 0, 1, 2, 2]
    oc = defaults.overcurrent(16.0)
    assert oc.levels[0].at == 16.0
    assert oc.clear_below == pytest.approx(15.2)
    assert oc.on_delay_s == defaults.OVERCURRENT_ON_DELAY_S


# --------------------------------------------------------------------------- properties

_GRAMMAR = re.compile(r"(R[EP]*C)*(R[EP]*)?")
_LETTER = {
    ChangeKind.RAISE: "R",
    ChangeKind.ESCALATE: "E",
    ChangeKind.PEAK: "P",
    ChangeKind.CLEAR: "C",
}

_ops = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=40.0),  # time step
        st.one_of(
            st.floats(min_value=-5.0, max_value=120.0),  # a measurement
            st.none(),  # a tick
        ),
        st.booleans(),  # tick freshness
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops, on_delay=st.sampled_from([0.0, 5.0, 10.0]))
def test_changes_follow_raise_then_clear(
    ops: list[tuple[float, float | None, bool]], on_delay: float
) -> None:
    """Changes always read RAISE (ESCALATE|PEAK)* CLEAR ...: never two raises or two clears
    in a row, the level never falls while open, and a stale tick never changes anything."""
    rule = replace(GAS, on_delay_s=on_delay)
    cond = NORMAL
    now = T0
    letters = []
    for dt, value, fresh in ops:
        now += dt
        if value is None:
            s = th.tick(rule, cond, now, fresh)
            if not fresh:
                assert s == Step(cond)
        else:
            s = th.step(rule, cond, value, now)
        if cond.abnormal and s.condition.abnormal:
            assert s.condition.level >= cond.level
        if s.change is ChangeKind.CLEAR:
            assert value is None or value < rule.clear_below
        if s.change is ChangeKind.RAISE:
            assert value is None or value >= rule.levels[0].at
        if s.change is not None:
            letters.append(_LETTER[s.change])
        cond = s.condition
    assert _GRAMMAR.fullmatch("".join(letters)), letters
