"""rules/engine.py under a wall-clock step (NTP, a person setting the time).

The engine's deadlines, delays and freshness windows run on monotonic time; wall time only
stamps what it shows. Here the Rig steps its wall clock an hour either way while monotonic
time runs on evenly: no device goes offline, nothing is raised early or late.
"""

from __future__ import annotations

import pytest

from rules.model import AlarmType, ChangeKind, EventKind, Reason
from tests.support.rules_rig import (
    BUTTON,
    CO_DET,
    EFM,
    GAS,
    GAS_STALE,
    SMOKE,
    T0,
    VALVE,
    Feed,
    Rig,
)

HOUR = 3600.0
JUMPS = pytest.mark.parametrize("jump", [HOUR, -HOUR], ids=["forward", "backward"])


def everyone_reports(rig: Rig, until: float, jump_at: float, jump: float) -> None:
    """Every device of the site talks every 10 s; the wall clock steps once at `jump_at`."""
    for t in range(1, int(until) + 1):
        if t == jump_at:
            rig.jump_wall(jump)
        if t % 10 == 0:
            rig.reading(t, GAS, lel=0.0)
            rig.reading(t, VALVE, open=0.0)
            rig.reading(t, CO_DET, co_ppm=0.0)
            rig.reading(t, EFM, residual_ma=5.0, temp_c=25.0, current_a=3.0)
            rig.event(t, BUTTON, EventKind.SELF_TEST)
            rig.event(t, SMOKE, EventKind.SELF_TEST)
        rig.tick(t)


@JUMPS
def test_a_wall_clock_step_marks_no_device_offline(jump: float) -> None:
    rig = Rig()
    everyone_reports(rig, until=600, jump_at=105, jump=jump)
    assert rig.seen(AlarmType.DEVICE_OFFLINE) == []
    assert rig.changes == []
    # What the engine shows is wall time, stepped like the clock.
    status = rig.engine.status(GAS)
    assert status.last_seen == T0 + 600 + jump
    assert status.values["lel"] == (0.0, T0 + 600 + jump)


@JUMPS
def test_a_silent_device_goes_offline_after_its_window_of_monotonic_time(jump: float) -> None:
    rig = Rig()
    rig.reading(1, GAS, lel=0.0)
    rig.tick(2)
    rig.jump_wall(jump)
    rig.run(1 + GAS_STALE + 5)
    offline = rig.seen(AlarmType.DEVICE_OFFLINE, ChangeKind.RAISE, ref=GAS)
    assert [(t, c.reason) for t, c in offline] == [(1 + GAS_STALE + 1, Reason.SILENT)]


@JUMPS
def test_valve_failure_comes_ten_seconds_after_close_valve_whatever_the_wall_clock(
    jump: float,
) -> None:
    rig = Rig()
    rig.reading(1, GAS, lel=30.0)
    assert rig.closes() == [1]
    rig.jump_wall(jump)  # right after the close, as in the report
    rig.run(30)
    failures = rig.seen(AlarmType.VALVE_FAILURE, ChangeKind.RAISE)
    assert [(t, c.reason) for t, c in failures] == [(11, Reason.VALVE_NOT_CONFIRMED)]
    assert rig.closes() == [1, 11]  # and the close is sent again at once


@JUMPS
def test_threshold_on_delay_runs_on_monotonic_time(jump: float) -> None:
    rig = Rig()
    rig.reading(1, EFM, residual_ma=400.0, temp_c=25.0, current_a=3.0)
    rig.jump_wall(jump)
    rig.run(30, feeds=[Feed(EFM, 1, {"residual_ma": 400.0, "temp_c": 25.0, "current_a": 3.0})])
    raised = rig.seen(AlarmType.RESIDUAL_CURRENT, ChangeKind.RAISE)
    assert [t for t, _ in raised] == [11]  # the 10 s on-delay, from the first reading


@JUMPS
def test_co_dose_accumulates_on_monotonic_time(jump: float) -> None:
    # 100 ppm: alarm after 25 min of exposure (EN 50291-1, 10 to 40 min), not at the step.
    rig = Rig()
    feed = Feed(CO_DET, 10, {"co_ppm": 100.0})
    rig.reading(0, CO_DET, co_ppm=100.0)
    rig.run(60, feeds=[feed])
    rig.jump_wall(jump)
    rig.run(30 * 60, feeds=[feed])
    raised = rig.seen(AlarmType.CO, ChangeKind.RAISE)
    assert [t for t, _ in raised] == [25 * 60]
