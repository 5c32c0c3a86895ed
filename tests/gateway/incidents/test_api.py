"""The incidents API through the app, by role and with another site's incident; the clocks
at the gateway's (fake) wall time; the printable written report; the audit rows; and the
incident a real close of a critical alarm opens. The gateway runs without a broker: alarms
are raised in its book directly."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.people.model import Person, Role
from rules.model import AlarmChange, AlarmKey, AlarmType, ChangeKind, Reason, Severity
from tests.conftest import FakeClock
from tests.support.overview import two_sites

MIN = 60.0
PERSONS = {
    "duty": Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"})),
    "anning": Person("zhao", "赵院长", Role.LEGAL_REPRESENTATIVE, frozenset({"anning"})),
    "bureau": Person("ju", "局值班员", Role.BUREAU, frozenset()),
    "admin": Person("root1", "管理员", Role.ADMIN, frozenset()),
}
WRITTEN = {
    "what_happened": "厨房燃气软管老化泄漏，探测器报警，切断阀自动关闭。",
    "where": "一楼厨房",
    "people_affected": "无人员伤亡",
    "measures_taken": "关阀、开窗通风、疏散厨房人员\n<script>alert(1)</script>",
    "current_state": "已恢复正常",
    "follow_up": "更换软管，全院排查",
}


@dataclass
class Rig:
    gw: Gateway
    api: httpx.AsyncClient
    clock: FakeClock
    headers: dict[str, dict[str, str]]

    async def call(
        self, who: str, method: str, url: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.api.request(method, url, json=body, headers=self.headers[who])

    async def open(self, who: str = "duty", site: str = "xingfu", **extra: Any) -> str:
        r = await self.call(who, "POST", "/api/incidents", {"site": site, "title": "火情", **extra})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def raise_and_clear(self, site: str, device: str, severity: Severity) -> str:
        key = AlarmKey(site, device, AlarmType.GAS_LEAK)
        up = AlarmChange(key, ChangeKind.RAISE, severity, Reason.THRESHOLD_EXCEEDED, 30.0)
        write = self.gw.book.apply(up, self.clock())
        assert write is not None
        self.gw.dispatcher.persist(write)
        down = AlarmChange(key, ChangeKind.CLEAR, severity, Reason.RETURNED_TO_NORMAL, 1.0)
        cleared = self.gw.book.apply(down, self.clock())
        assert cleared is not None
        self.gw.dispatcher.persist(cleared)
        return write.alarm.id


def ids(r: httpx.Response) -> list[str]:
    return [str(i["id"]) for i in r.json()]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    data = two_sites(tmp_path / "data", 1)
    del data["mqtt"]  # no broker: the book is driven directly
    clock = FakeClock()
    async with Gateway(parse_config(data), clock=clock, monotonic=clock.monotonic) as gw:
        headers: dict[str, dict[str, str]] = {"anon": {}}
        for caller, person in PERSONS.items():
            gw.people.add(person, None, clock())
            _, secret = gw.people.issue_token(person.login, "t", "test", clock())
            headers[caller] = {"authorization": f"Bearer {secret}"}
        transport = httpx.ASGITransport(app=create_api(gw), client=("10.0.0.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as api:
            yield Rig(gw, api, clock, headers)


async def test_who_opens_reads_and_reports(rig: Rig) -> None:
    own = await rig.open("duty")
    foreign = await rig.open("anning", "anning")
    r = await rig.call("duty", "GET", f"/api/incidents/{own}")
    assert r.json()["opened_by"] == "王值班 (wang)" and r.json()["site"] == "xingfu"
    # Opening: the institution on its own site; the bureau reads, it does not open.
    for who, site, status in (
        ("bureau", "xingfu", 403),
        ("duty", "anning", 404),  # another site is unknown, as one that does not exist
        ("duty", "nowhere", 404),
        ("anon", "xingfu", 401),
        ("admin", "anning", 201),
    ):
        r = await rig.call(who, "POST", "/api/incidents", {"site": site, "title": "x"})
        assert r.status_code == status, (who, site, r.text)
        assert status != 404 or "anning" not in r.text or site == "anning"
    r = await rig.call("duty", "POST", "/api/incidents", {"site": "xingfu", "title": "x", "x": 1})
    assert r.status_code == 422  # an unknown field is refused
    # Reading: the institution its own, the bureau every site.
    assert ids(await rig.call("duty", "GET", "/api/incidents")) == [own]
    assert set(ids(await rig.call("bureau", "GET", "/api/incidents"))) >= {own, foreign}
    anning = ids(await rig.call("bureau", "GET", "/api/incidents?site=anning"))
    assert foreign in anning and own not in anning
    assert (await rig.call("duty", "GET", "/api/incidents?site=anning")).status_code == 404
    assert (await rig.call("duty", "GET", f"/api/incidents/{foreign}")).status_code == 404
    assert (await rig.call("bureau", "GET", f"/api/incidents/{foreign}")).status_code == 200
    # Reporting: the same rule; another site's incident is unknown, not forbidden.
    phone = {"to_whom": "县民政局值班室"}
    for who, incident, status in (
        ("duty", foreign, 404),
        ("bureau", own, 403),
        ("duty", "inc-nope", 404),
        ("duty", own, 200),
        ("duty", own, 409),  # once; follow-ups come after
    ):
        r = await rig.call(who, "POST", f"/api/incidents/{incident}/phone-report", phone)
        assert r.status_code == status, (who, incident, r.text)
    r = await rig.call("duty", "POST", f"/api/incidents/{foreign}/written-report", WRITTEN)
    assert r.status_code == 404
    r = await rig.call("duty", "POST", f"/api/incidents/{own}/follow-ups", {"text": "已排查"})
    assert r.json()["follow_ups"][0]["by"] == "王值班 (wang)"
    r = await rig.call("bureau", "POST", f"/api/incidents/{own}/follow-ups", {"text": "x"})
    assert r.status_code == 403


async def test_the_clocks_at_the_gateways_time(rig: Rig) -> None:
    incident = await rig.open()
    url = f"/api/incidents/{incident}"
    rig.clock.advance(29 * MIN + 59)
    clocks = (await rig.call("duty", "GET", url)).json()["clocks"]
    assert clocks["phone"] == {
        "due_at": "2026-11-18T19:36:40.000+08:00",
        "done_at": None,
        "state": "running",
        "seconds_left": 1.0,
    }
    rig.clock.advance(2)
    clocks = (await rig.call("duty", "GET", "/api/incidents")).json()[0]["clocks"]
    assert (clocks["phone"]["state"], clocks["phone"]["seconds_left"]) == ("missed", -1.0)
    assert clocks["written"]["state"] == "running"
    # Called at 31 minutes: done, late. A time given must be between opening and now.
    late = {"to_whom": "局值班室", "at": "2026-11-18T19:37:40+08:00"}
    for at in ("2026-11-18T19:00:00+08:00", "2026-11-18T20:00:00+08:00", "19:30"):
        r = await rig.call("duty", "POST", f"{url}/phone-report", {**late, "at": at})
        assert r.status_code == 422, at
    rig.clock.advance(5 * MIN)
    r = await rig.call("duty", "POST", f"{url}/phone-report", late)
    assert r.json()["clocks"]["phone"]["state"] == "done_late"
    assert r.json()["phone_report"] == {
        "to_whom": "局值班室", "at": "2026-11-18T19:37:40.000+08:00", "by": "王值班 (wang)",
    }  # fmt: skip
    r = await rig.call("duty", "POST", f"{url}/written-report", WRITTEN)
    assert r.status_code == 200
    assert r.json()["clocks"]["written"]["state"] == "done"  # at 36 minutes
    assert r.json()["written_report"]["measures_taken"].startswith("关阀、开窗通风、疏散厨房人员\n")
    r = await rig.call("duty", "POST", f"{url}/written-report", WRITTEN)
    assert r.status_code == 409


async def test_the_printable_written_report(rig: Rig) -> None:
    incident = await rig.open()
    url = f"/api/incidents/{incident}"
    page = (await rig.call("duty", "GET", f"{url}?format=html")).text
    assert "尚未电话报告" in page and "尚未提交书面报告" in page
    await rig.call("duty", "POST", f"{url}/phone-report", {"to_whom": "县民政局值班室"})
    rig.clock.advance(61 * MIN)
    await rig.call("duty", "POST", f"{url}/written-report", WRITTEN)
    r = await rig.call("bureau", "GET", f"{url}?format=html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    text = re.sub(r"<[^>]+>", " ", r.text)
    for shown in ("突发事件书面报告", "城区幸福养老服务中心", "事件经过", "厨房燃气软管老化泄漏",
                  "人员伤亡及影响", "已采取措施", "目前状况", "后续工作", "县民政局值班室",
                  "2026-11-18 19:06", "按时", "超时完成", "王值班 (wang)"):  # fmt: skip
        assert shown in text, shown
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert (await rig.call("duty", "GET", f"{url}?format=pdf")).status_code == 422


async def test_every_change_is_on_the_audit_trail(rig: Rig) -> None:
    incident = await rig.open()
    url = f"/api/incidents/{incident}"
    await rig.call("duty", "POST", f"{url}/phone-report", {"to_whom": "局"})
    await rig.call("duty", "POST", f"{url}/written-report", WRITTEN)
    await rig.call("duty", "POST", f"{url}/follow-ups", {"text": "续报"})
    await rig.call("bureau", "POST", f"{url}/follow-ups", {"text": "x"})
    r = await rig.call("admin", "GET", "/api/audit?action=incident.")
    rows = [
        (e["action"], e["actor"], e["site"], e["target"], e["result"])
        for e in reversed(r.json()["entries"])
    ]
    assert rows == [
        ("incident.open", "wang", "xingfu", incident, "ok"),
        ("incident.phone_report", "wang", "xingfu", incident, "ok"),
        ("incident.written_report", "wang", "xingfu", incident, "ok"),
        ("incident.follow_up", "wang", "xingfu", incident, "ok"),
        ("incident.follow_up", "ju", "xingfu", incident, "refused"),
    ]


async def test_a_real_close_of_a_critical_alarm_opens_one(rig: Rig) -> None:
    gas = rig.raise_and_clear("xingfu", "gas-kitchen", Severity.CRITICAL)
    rig.clock.advance(5 * MIN)
    r = await rig.call("duty", "POST", f"/api/alarms/{gas}/close", {"disposition": "real"})
    assert r.status_code == 200, r.text
    found = (await rig.call("duty", "GET", "/api/incidents")).json()
    assert [(i["alarm_id"], i["opened_by"], i["title"]) for i in found] == [
        (gas, "王值班 (wang)", "燃气泄漏 一楼厨房")
    ]
    assert found[0]["opened_at"] == "2026-11-18T19:11:40.000+08:00"  # when it was confirmed
    r = await rig.call("admin", "GET", "/api/audit?action=incident.open")
    assert [(e["actor"], e["target"]) for e in r.json()["entries"]] == [("wang", found[0]["id"])]
    # By hand, an alarm with an open incident gets no second one; an alarm of another site
    # is not one to name.
    body = {"site": "xingfu", "title": "燃气", "alarm_id": gas}
    r = await rig.call("duty", "POST", "/api/incidents", body)
    assert (r.status_code, r.json()["detail"]) == (409, {"incident": found[0]["id"]})
    # Not real, or not critical: no incident.
    false = rig.raise_and_clear("anning", "gas-1", Severity.CRITICAL)
    await rig.call("anning", "POST", f"/api/alarms/{false}/close", {"disposition": "false_alarm"})
    major = rig.raise_and_clear("xingfu", "gas-kitchen", Severity.MAJOR)
    await rig.call("duty", "POST", f"/api/alarms/{major}/close", {"disposition": "real"})
    assert len((await rig.call("admin", "GET", "/api/incidents")).json()) == 1
    body = {"site": "xingfu", "title": "燃气", "alarm_id": false}
    r = await rig.call("duty", "POST", "/api/incidents", body)
    assert r.status_code == 422 and "anning" not in r.text


async def test_an_acknowledgement_that_confirms_it_real_opens_one_at_once(rig: Rig) -> None:
    gas = rig.raise_and_clear("xingfu", "gas-kitchen", Severity.CRITICAL)
    rig.clock.advance(2 * MIN)
    r = await rig.call("duty", "POST", f"/api/alarms/{gas}/ack", {"note": "现场确认", "real": True})
    assert r.status_code == 200, r.text
    [found] = (await rig.call("duty", "GET", "/api/incidents")).json()
    assert r.json()["incident"] == found["id"] and found["alarm_id"] == gas
    # The clocks run from the acknowledgement, not from a close hours later.
    assert found["opened_at"] == "2026-11-18T19:08:40.000+08:00"
    assert found["opened_by"] == "王值班 (wang)"
    rig.clock.advance(60 * MIN)
    r = await rig.call("duty", "POST", f"/api/alarms/{gas}/close", {"disposition": "real"})
    assert r.status_code == 200
    assert len((await rig.call("duty", "GET", "/api/incidents")).json()) == 1, "not a second one"
    r = await rig.call("admin", "GET", "/api/audit?action=alarm.ack")
    assert r.json()["entries"][0]["detail"]["real"] is True
    # A plain acknowledgement, or a non-critical alarm confirmed real, opens none.
    plain = rig.raise_and_clear("anning", "gas-1", Severity.CRITICAL)
    r = await rig.call("anning", "POST", f"/api/alarms/{plain}/ack", {})
    assert r.status_code == 200 and "incident" not in r.json()
    major = rig.raise_and_clear("xingfu", "gas-kitchen", Severity.MAJOR)
    r = await rig.call("duty", "POST", f"/api/alarms/{major}/ack", {"real": True})
    assert r.status_code == 200 and r.json()["incident"] is None
    assert len((await rig.call("admin", "GET", "/api/incidents")).json()) == 1


async def test_a_broken_incidents_database_is_503_and_the_close_stands(rig: Rig) -> None:
    rig.gw.incidents.close()
    assert (await rig.call("duty", "GET", "/api/incidents")).status_code == 503
    gas = rig.raise_and_clear("xingfu", "gas-kitchen", Severity.CRITICAL)
    r = await rig.call("duty", "POST", f"/api/alarms/{gas}/close", {"disposition": "real"})
    assert r.status_code == 200 and r.json()["state"] == "closed"


async def test_closing_an_incident(rig: Rig) -> None:
    own = await rig.open()
    foreign = await rig.open("anning", "anning")
    url = f"/api/incidents/{own}"
    close = {"note": "软管已更换，全院排查完毕"}
    # Not before the written report is in: 409, in words.
    r = await rig.call("duty", "POST", f"{url}/close", close)
    assert (r.status_code, r.json()["error"]) == (409, "the written report is not in yet")
    await rig.call("duty", "POST", f"{url}/phone-report", {"to_whom": "局"})
    await rig.call("duty", "POST", f"{url}/written-report", WRITTEN)
    # The institution closes its own; another's is unknown; the bureau reads, it does not close.
    for who, incident, body, status in (
        ("duty", foreign, close, 404),
        ("bureau", own, close, 403),
        ("anon", own, close, 401),
        ("duty", own, {"note": ""}, 422),
        ("duty", own, {"note": "   "}, 422),
        ("duty", own, {"note": "x" * 2001}, 422),
        ("duty", own, {**close, "x": 1}, 422),
        ("duty", "inc-nope", close, 404),
    ):
        r = await rig.call(who, "POST", f"/api/incidents/{incident}/close", body)
        assert r.status_code == status, (who, incident, r.text)
        assert "anning" not in r.text or who != "duty"
    rig.clock.advance(90 * MIN)
    r = await rig.call("duty", "POST", f"{url}/close", close)
    assert r.status_code == 200, r.text
    closed = r.json()
    assert (closed["closed_at"], closed["closed_by"], closed["close_note"]) == (
        "2026-11-18T20:36:40.000+08:00", "王值班 (wang)", "软管已更换，全院排查完毕",
    )  # fmt: skip
    assert (await rig.call("bureau", "GET", url)).json() == closed
    # Once: the second close says when and by whom it was.
    r = await rig.call("duty", "POST", f"{url}/close", {"note": "again"})
    assert (r.status_code, r.json()["error"]) == (409, "the incident is already closed")
    assert r.json()["detail"]["closed_by"] == "王值班 (wang)"
    # Closed: no phone or written report any more, a follow-up still.
    other = await rig.open()
    await rig.call("duty", "POST", f"/api/incidents/{other}/written-report", WRITTEN)
    await rig.call("duty", "POST", f"/api/incidents/{other}/close", close)
    r = await rig.call("duty", "POST", f"/api/incidents/{other}/phone-report", {"to_whom": "局"})
    assert (r.status_code, r.json()["error"]) == (409, "the incident is closed")
    r = await rig.call("duty", "POST", f"{url}/follow-ups", {"text": "复检正常"})
    assert r.status_code == 200 and r.json()["closed_at"] == closed["closed_at"]
    # The printable report shows the closing.
    text = re.sub(r"<[^>]+>", " ", (await rig.call("duty", "GET", f"{url}?format=html")).text)
    for shown in ("结案时间", "2026-11-18 20:36", "结案人", "结案说明", "软管已更换，全院排查完毕"):
        assert shown in text, shown
    # The open and the closed, apart.
    opened = await rig.open()
    assert ids(await rig.call("duty", "GET", "/api/incidents?open=true")) == [opened]
    assert ids(await rig.call("duty", "GET", "/api/incidents?open=false")) == [other, own]
    assert len(ids(await rig.call("duty", "GET", "/api/incidents"))) == 3
    assert (await rig.call("duty", "GET", "/api/incidents?open=maybe")).status_code == 422
    # On the audit trail: refused, refused (the bureau), done, refused (twice).
    r = await rig.call("admin", "GET", "/api/audit?action=incident.close")
    entries = [e for e in reversed(r.json()["entries"]) if e["target"] == own]
    rows = [(e["actor"], e["site"], e["result"]) for e in entries]
    assert rows[0] == ("wang", "xingfu", "refused") and ("ju", "xingfu", "refused") in rows
    assert rows[-2:] == [("wang", "xingfu", "ok"), ("wang", "xingfu", "refused")]
    assert entries[-2]["detail"] == {"note": "软管已更换，全院排查完毕"}
