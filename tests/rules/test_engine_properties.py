"""rules/engine.py: properties over random sequences of inputs (hypothesis).

Every entry point takes `now`; here the Rig's offset from the start. No sleeps, no real
time, no mocks: tests.support.rules_rig's `Rig` feeds the real engine and records what comes
out.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.model import (
    ChangeKind,
    CommandKind,
    EventKind,
    Outcome,
)
from tests.support.rules_rig import GAS, GAS_KEY, VALVE, Rig, gas_changes

# =========================================================================== properties


_op = st.one_of(
    st.tuples(st.just("gas"), st.floats(min_value=-5.0, max_value=80.0)),
    st.tuples(st.just("tick"), st.just(0.0)),
    st.tuples(st.just("valve"), st.sampled_from([0.0, 1.0])),
    st.tuples(st.just("ack"), st.sampled_from([0.0, 1.0])),
    st.tuples(st.just("avail"), st.sampled_from([0.0, 1.0])),
    st.tuples(st.just("manual"), st.just(0.0)),
    st.tuples(st.just("event"), st.sampled_from([0.0, 1.0, 2.0])),
)
_ops = st.lists(st.tuples(st.floats(min_value=0.0, max_value=60.0), _op), max_size=120)


def _apply(rig: Rig, t: float, name: str, arg: float) -> Outcome:
    if name == "gas":
        return rig.reading(t, GAS, lel=arg)
    if name == "tick":
        return rig.tick(t)
    if name == "valve":
        return rig.reading(t, VALVE, open=arg)
    if name == "ack":
        return rig.result(t, ok=bool(arg))
    if name == "avail":
        return rig.avail(t, GAS, bool(arg))
    if name == "manual":
        rig._go(t)
        rig.engine.on_manual_open(VALVE)
        return Outcome()
    kind = (EventKind.FAULT, EventKind.FAULT_CLEARED, EventKind.SELF_TEST)[int(arg)]
    return rig.event(t, GAS, kind)


@settings(max_examples=300, deadline=None)
@given(ops=_ops, restored=st.sampled_from([None, "pre_alarm", "level_1"]))
def test_alarms_alternate_and_the_engine_never_opens_a_valve(
    ops: list[tuple[float, tuple[str, float]]], restored: str | None
) -> None:
    rig = Rig()  # Rig itself asserts that no command other than close_valve is ever emitted
    gas_level: str | None = restored
    if restored is not None:
        rig.restore(0, GAS_KEY, restored, None)
    t = 0.0
    for dt, (name, arg) in ops:
        t += dt
        before = gas_level
        out = _apply(rig, t, name, arg)
        for c in gas_changes(out):
            gas_level = None if c.kind is ChangeKind.CLEAR else c.level
        for cmd in out.commands:
            assert cmd.cmd is CommandKind.CLOSE_VALVE
            assert cmd.cause == GAS_KEY
            # a close is only ever asked for while a level-1 (or worse) gas alarm is open
            assert {before, gas_level} & {"level_1", "level_2"}, (before, gas_level, cmd)

    for key in {c.key for _, c in rig.changes}:
        kinds = [c.kind for _, c in rig.changes if c.key == key and not c.latched]
        raises = kinds.count(ChangeKind.RAISE)
        clears = kinds.count(ChangeKind.CLEAR)
        already_open = 1 if restored is not None and key == GAS_KEY else 0
        assert raises <= clears + 1 - already_open, (key, kinds)
        opening = [k for k in kinds if k in (ChangeKind.RAISE, ChangeKind.CLEAR)]
        expected_first = ChangeKind.CLEAR if already_open else ChangeKind.RAISE
        for i, k in enumerate(opening):
            want = expected_first if i % 2 == 0 else _other(expected_first)
            assert k is want, (key, kinds)


def _other(kind: ChangeKind) -> ChangeKind:
    return ChangeKind.CLEAR if kind is ChangeKind.RAISE else ChangeKind.RAISE
