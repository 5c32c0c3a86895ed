"""The hazard's loop as a pure function: every allowed step, every refused one, and the
major-hazard rule (only the bureau verifies)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.hazards.model import (
    EditRefused,
    Hazard,
    HazardAction,
    HazardEdit,
    HazardEvent,
    HazardLevel,
    HazardSource,
    HazardStatus,
    Refusal,
    TransitionRefused,
    edit,
    overdue,
    transition,
)

S = HazardStatus
T0 = 1_795_000_000.0
H = Hazard(
    1, "xingfu", "厨房", "燃气软管老化", HazardLevel.GENERAL, HazardSource.INSPECTION,
    T0, "王值班", "李四应", "更换软管", T0 + 86400,
)  # fmt: skip

ALLOWED = [
    (S.OPEN, S.RECTIFYING, HazardAction.START),
    (S.RECTIFYING, S.AWAITING_VERIFICATION, HazardAction.RECTIFIED),
    (S.AWAITING_VERIFICATION, S.CLOSED, HazardAction.VERIFIED),
    (S.AWAITING_VERIFICATION, S.RECTIFYING, HazardAction.VERIFICATION_FAILED),
]


@pytest.mark.parametrize(("start", "to", "action"), ALLOWED)
@pytest.mark.parametrize("bureau", [False, True])
def test_allowed_steps_of_a_general_hazard(
    start: HazardStatus, to: HazardStatus, action: HazardAction, bureau: bool
) -> None:
    if bureau and start is not S.AWAITING_VERIFICATION:
        with pytest.raises(TransitionRefused) as refused:
            transition(replace(H, status=start), to, bureau, actor="局", now=T0)
        assert refused.value.reason is Refusal.INSTITUTION_RECTIFIES
        return
    h, event = transition(replace(H, status=start), to, bureau, actor="某人", now=T0 + 5, note="n")
    assert h.status is to
    assert event == HazardEvent(T0 + 5, action, "某人", start, to, "n")
    assert h.closed_at == (T0 + 5 if to is S.CLOSED else None)
    verified = start is S.AWAITING_VERIFICATION
    assert (h.verified_by, h.verified_at, h.verification_note) == (
        ("某人", T0 + 5, "n") if verified else (None, None, None)
    )


REFUSED = [
    (a, b)
    for a in HazardStatus
    for b in HazardStatus
    if (a, b) not in {(x, y) for x, y, _ in ALLOWED}
]


@pytest.mark.parametrize(("start", "to"), REFUSED)
def test_every_other_step_is_refused(start: HazardStatus, to: HazardStatus) -> None:
    with pytest.raises(TransitionRefused, match="not a step of the loop") as refused:
        transition(replace(H, status=start), to, False, actor="王值班", now=T0)
    assert refused.value.reason is Refusal.NOT_IN_LOOP
    # The bureau is refused as the bureau first: only the check is its step.
    with pytest.raises(TransitionRefused) as refused:
        transition(replace(H, status=start), to, True, actor="局", now=T0)
    verifying = start is S.AWAITING_VERIFICATION
    assert refused.value.reason is (
        Refusal.NOT_IN_LOOP if verifying else Refusal.INSTITUTION_RECTIFIES
    )


@pytest.mark.parametrize("to", [S.CLOSED, S.RECTIFYING])
def test_only_the_bureau_verifies_a_major_hazard(to: HazardStatus) -> None:
    major = replace(H, level=HazardLevel.MAJOR, status=S.AWAITING_VERIFICATION)
    with pytest.raises(TransitionRefused) as refused:
        transition(major, to, False, actor="王值班", now=T0)
    assert refused.value.reason is Refusal.BUREAU_VERIFIES
    assert refused.value.detail == "only the bureau verifies a major hazard"
    h, _ = transition(major, to, True, actor="局值班员", now=T0 + 1, note="现场核查")
    assert h.status is to and h.verified_by == "局值班员"


def test_the_institution_moves_a_major_hazard_until_the_check() -> None:
    major = replace(H, level=HazardLevel.MAJOR)
    h, _ = transition(major, S.RECTIFYING, False, actor="王值班", now=T0)
    h, _ = transition(h, S.AWAITING_VERIFICATION, False, actor="王值班", now=T0)
    assert h.status is S.AWAITING_VERIFICATION


def test_overdue() -> None:
    due = H.deadline
    assert due is not None
    assert not overdue(H, due)  # at the deadline is still in time
    assert overdue(H, due + 1)
    assert overdue(replace(H, status=S.RECTIFYING), due + 1)
    assert not overdue(replace(H, status=S.AWAITING_VERIFICATION), due + 1)
    assert not overdue(replace(H, status=S.CLOSED), due + 1)
    assert not overdue(replace(H, deadline=None), due + 1)


def _text(ts: float | None) -> str:
    return "none" if ts is None else f"t+{ts - T0:.0f}"


@pytest.mark.parametrize("status", [S.OPEN, S.RECTIFYING, S.AWAITING_VERIFICATION])
def test_an_edit_changes_the_fields_and_says_so_on_the_timeline(status: HazardStatus) -> None:
    h = replace(H, status=status, deadline=None)
    changes = HazardEdit(location="二楼厨房", measure="更换软管", deadline=T0 + 60)
    edited, event = edit(h, changes, False, actor="王值班", now=T0 + 5, time_text=_text)
    assert edited == replace(h, location="二楼厨房", deadline=T0 + 60)
    assert event == HazardEvent(
        T0 + 5, HazardAction.EDITED, "王值班", status, status,
        "位置: 厨房 → 二楼厨房\n整改期限: none → t+60",
    )  # fmt: skip
    assert edit(h, HazardEdit(measure="更换软管"), False, actor="x", now=T0, time_text=_text) == (
        h, None,
    )  # fmt: skip


def test_the_level_is_the_bureaus_and_a_closed_hazard_is_not_edited() -> None:
    major = replace(H, level=HazardLevel.MAJOR)
    down = HazardEdit(level=HazardLevel.GENERAL)
    with pytest.raises(EditRefused) as refused:
        edit(major, down, False, actor="王值班", now=T0, time_text=_text)
    assert refused.value.reason is Refusal.BUREAU_SETS_LEVEL
    lowered, event = edit(major, down, True, actor="局", now=T0, time_text=_text)
    assert lowered.level is HazardLevel.GENERAL
    assert event is not None and event.note == "隐患等级: 重大 → 一般"
    for bureau in (False, True):
        with pytest.raises(EditRefused) as refused:
            edit(replace(H, status=S.CLOSED), HazardEdit(measure="x"), bureau, actor="a", now=T0,
                 time_text=_text)  # fmt: skip
        assert refused.value.reason is Refusal.CLOSED
