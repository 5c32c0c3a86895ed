"""The self-report and roster API by role, with another site's data, on a fake clock in the
gateway's zone; every change in the audit trail. The gateway is built, not started (no
broker): the routes need its duty store, people, audit log and clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.hazards.model import Hazard, HazardLevel, HazardSource, HazardStatus
from gateway.http.app import create_api
from gateway.people.model import Person, Role
from tests.conftest import free_port
from tests.support.overview import two_sites

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 24, 14, 0, tzinfo=SH).timestamp()
DAY = "2026-11-24"
ITEMS = ("gas", "electrical", "fire_exits", "heating", "kitchen", "residents_visited")
PERSONS = (
    Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"})),
    Person("li", "李四应", Role.SAFETY_MANAGER, frozenset({"xingfu"})),
    Person("zhao", "赵院长", Role.DUTY, frozenset({"anning"})),
    Person("ju", "局值班员", Role.BUREAU, frozenset()),
    Person("ju2", "局值班员二", Role.BUREAU, frozenset()),
    Person("juzhang", "带班领导", Role.BUREAU_LEADER, frozenset()),
    Person("root1", "管理员", Role.ADMIN, frozenset()),
)


class Api:
    def __init__(
        self, client: httpx.AsyncClient, gw: Gateway, tokens: dict[str, str], clock: list[float]
    ) -> None:
        self.client, self.gw, self.tokens, self._clock = client, gw, tokens, clock

    @property
    def now(self) -> float:
        return self._clock[0]

    @now.setter
    def now(self, value: float) -> None:
        self._clock[0] = value

    async def call(self, who: str, method: str, url: str, body: Any = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return await self.client.request(method, url, json=body, headers=headers)

    async def trail(self) -> list[tuple[str, str, str | None, str]]:
        rows = await self.gw.audit.query(limit=100)
        return [(r.actor, r.action, r.site, r.result) for r in reversed(rows)]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    data = two_sites(tmp_path / "data", free_port())
    clock = [T0]
    gw = Gateway(parse_config(data), clock=lambda: clock[0])
    await gw.audit.open()
    gw.people.open()
    gw.duty.open()
    tokens = {}
    for p in PERSONS:
        gw.people.add(p, None, T0)
        tokens[p.login] = gw.people.issue_token(p.login, "test", "test", T0)[1]
    transport = httpx.ASGITransport(app=create_api(gw))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Api(client, gw, tokens, clock)
    finally:
        gw.duty.close()
        gw.people.close()
        await gw.audit.close()


def checklist(**results: str) -> dict[str, Any]:
    return {"items": [{"item": i, "result": results.get(i, "ok"), "note": ""} for i in ITEMS]}


async def test_a_site_reports_and_the_bureau_sees_the_board(api: Api) -> None:
    r = await api.call("wang", "PUT", f"/api/sites/xingfu/daily-checks/{DAY}", checklist())
    assert r.status_code == 200, r.text
    mine = r.json()["sites"][0]
    assert (mine["standing"], mine["submitted_by"]) == ("submitted", "王值班 (wang)")
    assert mine["submitted_at"] == "2026-11-24T14:00:00.000+08:00"
    # A correction before 15:00 replaces the report and keeps its first time.
    api.now = T0 + 3599
    body = checklist(kitchen="problem")
    body["items"][4]["note"] = "灶台软管老化\n已更换"
    r = await api.call("li", "PUT", f"/api/sites/xingfu/daily-checks/{DAY}", body)
    fixed = r.json()["sites"][0]
    assert fixed["first_submitted_at"] == "2026-11-24T14:00:00.000+08:00"
    assert (
        fixed["submitted_by"] == "李四应 (li)"
        and fixed["items"][4]["note"] == "灶台软管老化\n已更换"
    )
    # From 15:00 on it stands as it is.
    api.now = T0 + 3600
    r = await api.call("wang", "PUT", f"/api/sites/xingfu/daily-checks/{DAY}", checklist())
    assert r.status_code == 409, r.text

    board = (await api.call("ju", "GET", f"/api/daily-checks?date={DAY}")).json()
    assert board["phase"] == "overdue" and board["due"] == "2026-11-24T15:00:00+08:00"
    assert board["now"] == "2026-11-24T15:00:00.000+08:00"
    assert [(s["site"], s["standing"]) for s in board["sites"]] == [
        ("xingfu", "submitted"), ("anning", "missing"),
    ]  # fmt: skip
    assert board["items"][0] == {"id": "gas", "label": "燃气设施"}
    # anning first reports at 15:00: late.
    api.now = T0 + 3600
    r = await api.call("zhao", "PUT", f"/api/sites/anning/daily-checks/{DAY}", checklist())
    assert r.json()["sites"][0]["standing"] == "late"
    # An institution reads its own sites only; today is the default date.
    own = (await api.call("wang", "GET", "/api/daily-checks")).json()
    assert own["date"] == DAY and [s["site"] for s in own["sites"]] == ["xingfu"]
    assert (await api.call("", "GET", "/api/daily-checks")).status_code == 401

    assert await api.trail() == [
        ("wang", "daily_check.submit", "xingfu", "ok"),
        ("li", "daily_check.submit", "xingfu", "ok"),
        ("wang", "daily_check.submit", "xingfu", "refused"),
        ("zhao", "daily_check.submit", "anning", "ok"),
    ]


async def test_who_may_report_and_what_is_a_report(api: Api) -> None:
    url = f"/api/sites/anning/daily-checks/{DAY}"
    r = await api.call("wang", "PUT", url, checklist())  # another site: unknown
    assert (r.status_code, r.json()) == (404, {"error": "unknown site", "detail": "anning"})
    for who in ("ju", "juzhang", "root1"):  # nobody reports for an institution
        assert (await api.call(who, "PUT", url, checklist())).status_code == 403
    url = f"/api/sites/xingfu/daily-checks/{DAY}"
    short = checklist()
    short["items"] = short["items"][1:]
    r = await api.call("wang", "PUT", url, short)
    assert r.status_code == 422 and "missing items: gas" in r.json()["detail"]
    extra = checklist()
    extra["items"].append({"item": "boiler", "result": "ok"})
    r = await api.call("wang", "PUT", url, extra)
    assert r.status_code == 422 and "unknown item 'boiler'" in r.json()["detail"]
    assert (await api.call("wang", "PUT", url, checklist(gas="fine"))).status_code == 422
    r = await api.call("wang", "PUT", url, checklist(kitchen="problem"))  # and no note
    assert r.status_code == 422 and "a problem needs a note" in r.text
    r = await api.call("wang", "PUT", "/api/sites/xingfu/daily-checks/2026-11-25", checklist())
    assert r.status_code == 422  # a day to come
    r = await api.call("wang", "PUT", "/api/sites/xingfu/daily-checks/2026-11-22", checklist())
    assert r.status_code == 422 and "too long ago" in r.text  # yesterday's is the oldest
    r = await api.call("wang", "PUT", "/api/sites/xingfu/daily-checks/0001-01-01", checklist())
    assert r.status_code == 422
    assert (
        await api.call("wang", "PUT", "/api/sites/xingfu/daily-checks/x", checklist())
    ).status_code == 422
    trail = await api.trail()
    assert trail[0] == ("wang", "daily_check.submit", None, "refused")  # no foreign site named
    assert all(row[3] == "refused" for row in trail)
    r = await api.call("wang", "PUT", "/api/sites/xingfu/daily-checks/2026-11-23", checklist())
    assert r.status_code == 200, "yesterday's may come in late"


async def test_the_roster_by_role_and_the_handover(api: Api) -> None:
    shift = {"scope": "xingfu", "shift": "day",
             "people": [{"login": "wang"}, {"login": "li"}]}  # fmt: skip
    assert (await api.call("wang", "PUT", "/api/duty", shift)).status_code == 200
    three = {**shift, "people": [*shift["people"], {"login": "zhao"}]}
    r = await api.call("wang", "PUT", "/api/duty", three)
    assert r.status_code == 422 and "at most 2" in r.json()["detail"]
    r = await api.call("wang", "PUT", "/api/duty", {**shift, "people": [{"login": "zhao"}]})
    assert r.status_code == 422  # anning's person is not xingfu's duty
    assert (await api.call("ju", "PUT", "/api/duty", shift)).status_code == 403
    assert (
        await api.call("wang", "PUT", "/api/duty", {**shift, "scope": "anning"})
    ).status_code == 404
    bureau = {"scope": "bureau", "shift": "day",
              "people": [{"login": "ju"}, {"login": "juzhang", "role": "leader"}]}  # fmt: skip
    assert (await api.call("wang", "PUT", "/api/duty", bureau)).status_code == 403
    assert (await api.call("ju", "PUT", "/api/duty", bureau)).status_code == 200
    bad = {**bureau, "people": [{"login": "ju", "role": "leader"}]}  # not a leader
    assert (await api.call("root1", "PUT", "/api/duty", bad)).status_code == 422

    r = await api.call("wang", "POST", "/api/duty/handover",
                       {"scope": "xingfu", "to": "li", "note": "阀门已检查"})  # fmt: skip
    assert r.status_code == 200, r.text
    r = await api.call("wang", "POST", "/api/duty/handover", {"scope": "xingfu", "to": "zhao"})
    assert r.status_code == 422

    seen = (await api.call("wang", "GET", "/api/duty")).json()
    assert seen["leader_on_call"] == {"login": "juzhang", "name": "带班领导"}
    assert [s["scope"] for s in seen["scopes"]] == ["bureau", "xingfu"]
    xingfu = seen["scopes"][1]
    assert [p["name"] for p in xingfu["shifts"][0]["on_duty"]] == ["李四应", "王值班"]
    assert xingfu["handovers"][0]["to"] == {"login": "li", "name": "李四应"}
    every = (await api.call("juzhang", "GET", "/api/duty")).json()
    assert [s["scope"] for s in every["scopes"]] == ["bureau", "xingfu", "anning"]
    assert (await api.call("ju", "GET", "/api/duty?date=2026-11-25")).json()[
        "leader_on_call"
    ] is None

    assert [row for row in await api.trail() if row[3] == "ok"] == [
        ("wang", "duty.set", "xingfu", "ok"),
        ("ju", "duty.set", None, "ok"),
        ("wang", "duty.handover", "xingfu", "ok"),
    ]


async def test_the_board_carries_the_days_hazard_changes(api: Api) -> None:
    # The ledger not open (a broken disk): the self-report goes on, the changes are unknown.
    r = await api.call("wang", "GET", f"/api/daily-checks?date={DAY}")
    assert r.status_code == 200 and r.json()["sites"][0]["hazard_changes"] is None
    hazards = api.gw.hazards
    hazards.open()
    try:
        yesterday, today = T0 - 86400, datetime(2026, 11, 24, 0, 0, tzinfo=SH).timestamp()

        def found(site: str, at: float, location: str) -> int:
            h = Hazard(
                0, site, location, "燃气软管老化", HazardLevel.MAJOR, HazardSource.INSPECTION,
                at, "王值班 (wang)", "李四应", "更换", None,
            )  # fmt: skip
            return hazards.add(h).id

        old = found("xingfu", yesterday, "厨房")
        hazards.transition(old, HazardStatus.RECTIFYING, False, actor="李四应 (li)",
                           now=today + 60, note="已安排")  # fmt: skip
        found("xingfu", today + 120, "锅炉房")
        found("anning", today + 180, "食堂")
        found("xingfu", today + 86400, "明天")  # the next day's

        r = await api.call("wang", "PUT", f"/api/sites/xingfu/daily-checks/{DAY}", checklist())
        mine = r.json()["sites"][0]["hazard_changes"]
        assert [(c["hazard_id"], c["location"], c["action"], c["to"], c["actor"], c["at"])
                for c in mine] == [
            (1, "厨房", "start", "rectifying", "李四应 (li)", "2026-11-24T00:01:00.000+08:00"),
            (2, "锅炉房", "found", "open", "王值班 (wang)", "2026-11-24T00:02:00.000+08:00"),
        ]  # fmt: skip
        assert (mine[0]["note"], mine[0]["to_label"], mine[0]["level_label"]) == (
            "已安排", "整改中", "重大",
        )  # fmt: skip
        board = (await api.call("ju", "GET", f"/api/daily-checks?date={DAY}")).json()
        where = {s["site"]: [c["location"] for c in s["hazard_changes"]] for s in board["sites"]}
        assert where == {"xingfu": ["厨房", "锅炉房"], "anning": ["食堂"]}
        before = (await api.call("wang", "GET", "/api/daily-checks?date=2026-11-23")).json()
        assert [c["action"] for c in before["sites"][0]["hazard_changes"]] == ["found"]
    finally:
        hazards.close()
