"""`IncidentStore` round trip: an incident and its reports written, closed, opened again and
read back as they were; each of the two reports once, follow-ups appended in order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.incidents.model import FollowUp, Incident, PhoneReport, ReportKind, WrittenReport
from gateway.incidents.store import AlreadyOpen, AlreadyReported, IncidentStore, UnknownIncident

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
