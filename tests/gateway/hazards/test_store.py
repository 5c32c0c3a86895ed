"""`HazardStore` round trips: a hazard and its timeline, the filters, a notice's number per
year, its receipt, and its closing with its last hazard."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.hazards.model import (
    EditRefused,
    Hazard,
    HazardAction,
    HazardEdit,
    HazardLevel,
    HazardSource,
    HazardStatus,
    Notice,
    NoticeState,
    TransitionRefused,
)
from gateway.hazards.store import AlreadyReceived, HazardsOfAnotherSite, HazardStore

S = HazardStatus
T0 = 1_795_000_000.0
H = Hazard(
    0, "xingfu", "厨房", "燃气软管老化\n第二行", HazardLevel.MAJOR, HazardSource.VALVE_FAILURE,
    T0, "王值班 (wang)", "李四应", "更换软管", T0 + 86400, alarm_id="a-1",
)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HazardStore]:
    s = HazardStore(tmp_path / "hazards.sqlite3")
    s.open()
    try:
        yield s
    finally:
        s.close()


def test_a_hazard_and_its_timeline_round_trip(store: HazardStore) -> None:
    added = store.add(H)
    assert added == replace(H, id=1)
    assert store.get(1) == added and store.get(2) is None
    store.transition(1, S.RECTIFYING, False, actor="李四应", now=T0 + 10)
    store.transition(1, S.AWAITING_VERIFICATION, False, actor="李四应", now=T0 + 20, note="已换")
    with pytest.raises(TransitionRefused):
        store.transition(1, S.CLOSED, False, actor="李四应", now=T0 + 30)
    closed = store.transition(1, S.CLOSED, True, actor="局值班员", now=T0 + 40, note="现场核查")
    assert store.get(1) == closed
    assert (closed.closed_at, closed.verified_by, closed.verification_note) == (
        T0 + 40, "局值班员", "现场核查",
    )  # fmt: skip
    events = store.events(1)
    assert [(e.action, e.actor, e.from_status, e.to_status, e.note) for e in events] == [
        (HazardAction.FOUND, "王值班 (wang)", None, S.OPEN, None),
        (HazardAction.START, "李四应", S.OPEN, S.RECTIFYING, None),
        (HazardAction.RECTIFIED, "李四应", S.RECTIFYING, S.AWAITING_VERIFICATION, "已换"),
        (HazardAction.VERIFIED, "局值班员", S.AWAITING_VERIFICATION, S.CLOSED, "现场核查"),
    ]


def test_filters(store: HazardStore) -> None:
    store.add(H)
    store.add(replace(H, site="anning", level=HazardLevel.GENERAL))
    store.transition(2, S.RECTIFYING, False, actor="x", now=T0)
    assert [h.id for h in store.hazards()] == [1, 2]
    assert [h.id for h in store.hazards(sites=["anning"])] == [2]
    assert [h.id for h in store.hazards(sites=[])] == []
    assert [h.id for h in store.hazards(status=S.OPEN)] == [1]
    assert [h.id for h in store.hazards(level=HazardLevel.GENERAL)] == [2]


def _issue(store: HazardStore, *, site: str, hazard_ids: list[int], year: int) -> Notice:
    return store.issue(
        site=site, hazard_ids=hazard_ids, year=year, issued_at=T0, issued_by="局值班员",
        person_in_charge="张杰荣", deadline=T0 + 7 * 86400, requirements="限期整改",
    )  # fmt: skip


def test_notices_number_per_year_and_close_with_their_hazards(store: HazardStore) -> None:
    for _ in range(3):
        store.add(replace(H, level=HazardLevel.GENERAL))
    store.add(replace(H, site="anning"))
    first = _issue(store, site="xingfu", hazard_ids=[2, 1], year=2026)
    second = _issue(store, site="xingfu", hazard_ids=[3], year=2026)
    next_year = _issue(store, site="xingfu", hazard_ids=[3], year=2027)
    assert [first.number, second.number, next_year.number] == [
        "整改〔2026〕第1号", "整改〔2026〕第2号", "整改〔2027〕第1号",
    ]  # fmt: skip
    assert first.hazard_ids == (1, 2) and first.state is NoticeState.ISSUED
    with pytest.raises(HazardsOfAnotherSite) as foreign:
        _issue(store, site="xingfu", hazard_ids=[1, 4, 99], year=2026)
    assert foreign.value.ids == [4, 99]
    assert len(store.notices()) == 3  # nothing written

    received = store.receive(first.id, "张杰荣 (zhang)", T0 + 5)
    assert received.state is NoticeState.RECEIVED and received.received_by == "张杰荣 (zhang)"
    with pytest.raises(AlreadyReceived):
        store.receive(first.id, "x", T0 + 6)

    for step in (S.RECTIFYING, S.AWAITING_VERIFICATION, S.CLOSED):
        store.transition(1, step, False, actor="李四应", now=T0 + 100)
    assert store.notice(first.id) == received  # hazard 2 is still open
    for step in (S.RECTIFYING, S.AWAITING_VERIFICATION, S.CLOSED):
        store.transition(2, step, False, actor="李四应", now=T0 + 200)
    done = store.notice(first.id)
    assert done is not None and done.state is NoticeState.CLOSED and done.closed_at == T0 + 200
    assert [n.id for n in store.notices(sites=["xingfu"])] == [3, 2, 1]
    assert store.notices(sites=["anning"]) == []


def test_reopened_file_keeps_everything(tmp_path: Path) -> None:
    s = HazardStore(tmp_path / "h.sqlite3")
    s.open()
    s.add(H)
    s.close()
    s.open()
    try:
        assert s.get(1) == replace(H, id=1)
    finally:
        s.close()


def test_an_edit_and_its_entry_are_written_together(store: HazardStore) -> None:
    store.add(H)
    text = lambda ts: "none" if ts is None else f"t+{ts - T0:.0f}"  # noqa: E731
    edited, event = store.edit(
        1, HazardEdit(location="二楼厨房", deadline=T0 + 100), False, actor="李四应", now=T0 + 5,
        time_text=text,
    )  # fmt: skip
    assert store.get(1) == edited == replace(H, id=1, location="二楼厨房", deadline=T0 + 100)
    assert event is not None and store.events(1)[-1] == event
    assert event.note == "位置: 厨房 → 二楼厨房\n整改期限: t+86400 → t+100"
    # Refused (the level is the bureau's) or no change: nothing is written.
    with pytest.raises(EditRefused):
        store.edit(1, HazardEdit(level=HazardLevel.GENERAL, measure="x"), False, actor="a",
                   now=T0 + 6, time_text=text)  # fmt: skip
    assert store.edit(1, HazardEdit(location="二楼厨房"), False, actor="a", now=T0 + 7,
                      time_text=text) == (edited, None)  # fmt: skip
    assert store.get(1) == edited and len(store.events(1)) == 2


def test_the_steps_of_a_day(store: HazardStore) -> None:
    store.add(H)  # found at T0
    store.add(replace(H, site="anning", found_at=T0 + 50))
    store.transition(1, S.RECTIFYING, False, actor="李四应", now=T0 + 100)
    store.transition(1, S.AWAITING_VERIFICATION, False, actor="李四应", now=T0 + 200)
    got = store.steps_between({"xingfu", "anning"}, T0, T0 + 200)  # the end is not in
    assert [(h.id, e.action, e.at) for h, e in got] == [
        (1, HazardAction.FOUND, T0), (2, HazardAction.FOUND, T0 + 50),
        (1, HazardAction.START, T0 + 100),
    ]  # fmt: skip
    assert got[0][0].status is S.AWAITING_VERIFICATION  # the hazard as it is now
    assert [h.id for h, _ in store.steps_between({"anning"}, T0, T0 + 200)] == [2]
    assert store.steps_between(set(), T0, T0 + 200) == []
