"""`HazardStore` round trips: a hazard and its timeline, the filters, a notice's number per
year, its receipt, and its closing with its last hazard."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.hazards.model import (
    Hazard,
    HazardAction,
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
