"""Escalation policies replaced by a configuration reload: pending steps keep their due
times; a step the new policy lacks is cancelled. Pure, fake clock."""

from __future__ import annotations

from gateway.notify.policy import AlarmInfo, Escalations, SendState, Step, default_policies
from rules.model import Instant

SMS = ("sms",)
VOICE = ("voice",)
T0 = 1_800_000_000.0
MONO0 = 9_000.0


def at(t: float) -> Instant:
    return Instant(MONO0 + (t - T0), t)


def test_pending_steps_survive_and_missing_ones_are_cancelled() -> None:
    e = Escalations(default_policies(VOICE, SMS), group_window_s=30.0)
    e.on_alarm(AlarmInfo("a1", "s", "gas", "critical", 1, T0, False, False), False, at(T0))
    e.done(e.due(at(T0))[0], at(T0), ok=True)  # step 0 sent; steps 1 and 2 pending at T0+300
    only_two = {
        "critical": (Step(0.0, ("safety_manager",), SMS), Step(60.0, ("duty_officer",), SMS))
    }
    dropped = e.replace_policies(only_two, 10.0)
    assert [(s.key.step, s.state) for s in dropped] == [(2, SendState.CANCELLED)]
    pending = [s for s in e.sends.values() if s.state is SendState.PENDING]
    assert [(s.key.step, s.due_at) for s in pending] == [(1, T0 + 300.0)]  # due time kept
    assert e.group_window_s == 10.0
    [batch] = e.due(at(T0 + 300.0))
    assert batch.step.roles == ("duty_officer",)  # the new policy's step
