"""`IncidentStore` round trip: an incident and its reports written, closed, opened again and
read back as they were; each of the two reports once, follow-ups appended in order; closing
(结案) after the written report only, once, and a file of schema version 1 brought to 2."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.incidents.model import (
    CloseRefusal,
    FollowUp,
    Incident,
    PhoneReport,
    ReportKind,
    WrittenReport,
)
from gateway.incidents.readonly import incidents_touching
from gateway.incidents.store import (
    AlreadyOpen,
    AlreadyReported,
    IncidentClosed,
    IncidentStore,
    NotClosable,
    UnknownIncident,
)
from gateway.storage.schemas import _INCIDENTS_V1

T0 = 1_795_000_000.0


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "incidents.sqlite3"
    store = IncidentStore(path)
    store.open()
    opened = store.open_incident(Incident("inc-1", "xingfu", "a-1", "燃气泄漏", T0, "王值班"))
    assert opened == Incident("inc-1", "xingfu", "a-1", "燃气泄漏", T0, "王值班")
    store.open_incident(Incident("inc-2", "anning", None, "火警", T0 + 5, "赵院长"))
    phone = PhoneReport("县民政局值班室 李科长", T0 + 600, "王值班")
    written = WrittenReport("厨房燃气泄漏", "一楼厨房", "无人员伤亡", "关阀、通风", "已恢复",
                            "更换软管", T0 + 3000, "王值班")  # fmt: skip
    store.add_phone_report("inc-1", phone)
    store.add_follow_up("inc-1", FollowUp(T0 + 4000, "李四", "维修已到场"))
    store.add_written_report("inc-1", written)
    last = store.add_follow_up("inc-1", FollowUp(T0 + 5000, "李四", "软管已换\n已复检"))
    store.close()

    store = IncidentStore(path)
    store.open()
    found = store.get("inc-1")
    assert found == last
    assert found is not None
    assert (found.phone_report, found.written_report) == (phone, written)
    assert [f.text for f in found.follow_ups] == ["维修已到场", "软管已换\n已复检"]
    assert [i.id for i in store.query()] == ["inc-2", "inc-1"]  # newest first
    assert [i.id for i in store.query(sites={"xingfu"})] == ["inc-1"]
    assert store.query(sites=set()) == []
    assert store.get("nope") is None
    assert store.open_for_alarm("a-1") == found
    store.close()


def test_once_each(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "incidents.sqlite3")
    store.open()
    store.open_incident(Incident("inc-1", "xingfu", "a-1", "燃气泄漏", T0, "wang"))
    with pytest.raises(AlreadyOpen) as exc:
        store.open_incident(Incident("inc-2", "xingfu", "a-1", "燃气泄漏", T0, "li"))
    assert exc.value.incident_id == "inc-1"
    store.add_phone_report("inc-1", PhoneReport("局", T0, "wang"))
    with pytest.raises(AlreadyReported) as again:
        store.add_phone_report("inc-1", PhoneReport("局", T0 + 1, "li"))
    assert again.value.kind is ReportKind.PHONE
    with pytest.raises(UnknownIncident):
        store.add_follow_up("inc-9", FollowUp(T0, "wang", "x"))
    store.close()
    with pytest.raises(RuntimeError):
        store.get("inc-1")
    # The database says it too: a second phone report is refused by its index.
    db = sqlite3.connect(tmp_path / "incidents.sqlite3")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO incident_reports VALUES ('inc-1', 9, 'phone', '{}', 0, 'x')")
    db.close()


def test_closing(tmp_path: Path) -> None:
    path = tmp_path / "incidents.sqlite3"
    store = IncidentStore(path)
    store.open()
    store.open_incident(Incident("inc-1", "xingfu", "a-1", "燃气泄漏", T0, "wang"))
    store.open_incident(Incident("inc-2", "xingfu", None, "火警", T0 + 1, "wang"))
    with pytest.raises(NotClosable) as early:
        store.close_incident("inc-1", T0 + 60, "wang", "结案")
    assert early.value.reason is CloseRefusal.NO_WRITTEN_REPORT
    with pytest.raises(UnknownIncident):
        store.close_incident("inc-9", T0 + 60, "wang", "结案")
    written = WrittenReport("泄漏", "厨房", "无", "关阀", "已恢复", "检修", T0 + 600, "wang")
    store.add_written_report("inc-1", written)
    closed = store.close_incident("inc-1", T0 + 700, "王值班", "软管已更换，复检正常")
    assert (closed.closed_at, closed.closed_by, closed.close_note) == (
        T0 + 700, "王值班", "软管已更换，复检正常",
    )  # fmt: skip
    with pytest.raises(NotClosable) as twice:
        store.close_incident("inc-1", T0 + 800, "li", "again")
    assert twice.value.reason is CloseRefusal.ALREADY_CLOSED
    assert twice.value.incident.closed_by == "王值班"
    # Closed: no phone report any more; a follow-up still.
    with pytest.raises(IncidentClosed):
        store.add_phone_report("inc-1", PhoneReport("局", T0 + 900, "wang"))
    store.add_follow_up("inc-1", FollowUp(T0 + 1000, "wang", "全院排查完毕"))
    assert [i.id for i in store.query(is_open=True)] == ["inc-2"]
    assert [i.id for i in store.query(is_open=False)] == ["inc-1"]
    store.close()
    store = IncidentStore(path)
    store.open()
    assert store.get("inc-1") == replace(
        closed, follow_ups=(FollowUp(T0 + 1000, "wang", "全院排查完毕"),)
    )
    # Its alarm may open a new incident once this one is closed.
    store.open_incident(Incident("inc-3", "xingfu", "a-1", "燃气泄漏", T0 + 2000, "wang"))
    store.close()


def test_a_version_1_file_is_brought_to_closings(tmp_path: Path) -> None:
    path = tmp_path / "incidents.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_INCIDENTS_V1)
    db.execute("INSERT INTO incidents VALUES ('inc-1', 'xingfu', NULL, '火警', ?, 'wang', ?)",
               (T0, T0 + 5))  # fmt: skip
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    # Read as it is (the daily report from the CLI), then brought to version 2.
    (unmigrated,) = incidents_touching(path, {"xingfu"}, T0 - 60, T0 + 60)
    assert (unmigrated.closed_at, unmigrated.closed_by) == (T0 + 5, None)
    store = IncidentStore(path)
    store.open()
    old = store.get("inc-1")
    assert old is not None and (old.closed_at, old.closed_by, old.close_note) == (
        T0 + 5,
        None,
        None,
    )
    store.close()
