"""The hazard ledger and notices through the API, by role and with another site's hazards:
institutions enter and rectify on their own sites, the bureau verifies and issues notices,
the XLSX read back with openpyxl, a notice closing with its last hazard, and the audit rows.
The gateway is built but not started (no broker): the routes need only the hazards, people
and audit databases, the inventory and the clock."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.hazards.model import HazardStatus
from gateway.http.app import create_api
from gateway.http.hazard_documents import LEDGER_HEADERS, LEDGER_SHEET
from gateway.people.model import Person, Role
from gateway.report.model import XLSX_MIME
from tests.conftest import free_port
from tests.support.overview import two_sites

T0 = 1_795_000_000.0  # 2026-11-18 19:06:40 in Shanghai
DAY = 86400.0
PERSONS = {
    "duty": Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"})),
    "manager": Person("li", "李四应", Role.SAFETY_MANAGER, frozenset({"xingfu"})),
    "anning": Person("zhao", "赵院长", Role.LEGAL_REPRESENTATIVE, frozenset({"anning"})),
    "bureau": Person("ju", "局值班员", Role.BUREAU, frozenset()),
    "leader": Person("juzhang", "带班领导", Role.BUREAU_LEADER, frozenset()),
    "bureau_anning": Person("juan", "局安宁", Role.BUREAU, frozenset({"anning"})),
    "admin": Person("root1", "管理员", Role.ADMIN, frozenset()),
}


@dataclass
class Api:
    client: httpx.AsyncClient
    gw: Gateway
    headers: dict[str, dict[str, str]]
    now: list[float]

    async def call(self, who: str, method: str, url: str, body: Any = None) -> httpx.Response:
        return await self.client.request(method, url, json=body, headers=self.headers[who])

    async def add(self, who: str = "duty", **fields: Any) -> httpx.Response:
        body = {
            "site": "xingfu", "location": "厨房", "description": "燃气软管老化",
            "level": "general", "responsible": "李四应", "measure": "更换软管",
            "deadline": "2026-11-25T18:00+08:00",
        } | fields  # fmt: skip
        return await self.call(who, "POST", "/api/hazards", body)

    async def step(self, who: str, hazard_id: int, to: str, note: str = "") -> httpx.Response:
        body = {"to": to, "note": note}
        return await self.call(who, "POST", f"/api/hazards/{hazard_id}/transition", body)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    data = two_sites(tmp_path / "data", free_port())
    data["http"] = {"host": "127.0.0.1", "port": 8080, "accounts": True}
    now = [T0]
    gw = Gateway(parse_config(data), clock=lambda: now[0])
    await gw.audit.open()
    gw.people.open()
    gw.hazards.open()
    headers: dict[str, dict[str, str]] = {"anon": {}}
    for key, person in PERSONS.items():
        gw.people.add(person, None, T0)
        _, secret = gw.people.issue_token(person.login, "test", "test", T0)
        headers[key] = {"authorization": f"Bearer {secret}"}
    transport = httpx.ASGITransport(app=create_api(gw))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Api(client, gw, headers, now)
    finally:
        gw.hazards.close()
        gw.people.close()
        await gw.audit.close()


async def test_enter_a_hazard_by_role(api: Api) -> None:
    r = await api.add()
    assert r.status_code == 201, r.text
    h = r.json()
    assert (h["id"], h["site"], h["site_name"], h["status"], h["found_by"]) == (
        1, "xingfu", "城区幸福养老服务中心", "open", "王值班 (wang)",
    )  # fmt: skip
    assert (h["found_at"], h["deadline"]) == (
        "2026-11-18T19:06:40.000+08:00", "2026-11-25T18:00:00.000+08:00",
    )  # fmt: skip
    assert (await api.add("bureau", site="anning")).status_code == 201
    assert (await api.add("leader")).status_code == 201
    assert (await api.add("admin")).status_code == 201
    # Another site is unknown to an institution, as one that does not exist; so to a bureau
    # person of other sites.
    for who, site in (("duty", "anning"), ("bureau_anning", "xingfu"), ("duty", "nowhere")):
        r = await api.add(who, site=site)
        assert (r.status_code, r.json()) == (404, {"error": "unknown site", "detail": "site"})
    assert (await api.add("anon")).status_code == 401
    r = await api.add(deadline="2026-11-25 18:00")
    assert (r.status_code, r.json()["error"]) == (422, "invalid request")
    r = await api.add(level="huge")
    assert r.status_code == 422


async def test_the_loop_through_the_api(api: Api) -> None:
    await api.add(level="major")
    api.now[0] = T0 + 60
    assert (await api.step("bureau", 1, "rectifying")).status_code == 403  # not the bureau's
    assert (await api.step("duty", 1, "rectifying", "已安排")).status_code == 200
    r = await api.step("duty", 1, "closed")
    assert (r.status_code, r.json()["error"]) == (409, "transition refused")
    assert "not a step of the loop" in r.json()["detail"]
    assert (await api.step("manager", 1, "awaiting_verification", "已更换")).status_code == 200
    r = await api.step("duty", 1, "closed")
    assert (r.status_code, r.json()["detail"]) == (403, "only the bureau verifies a major hazard")
    assert (await api.step("bureau_anning", 1, "closed")).status_code == 404  # not its site
    assert (await api.step("leader", 1, "rectifying", "软管未固定")).status_code == 200
    await api.step("manager", 1, "awaiting_verification")
    api.now[0] = T0 + 120
    r = await api.step("bureau", 1, "closed", "现场核查合格")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["verified_by"], r.json()["verification_note"]) == (
        "closed", "局值班员 (ju)", "现场核查合格",
    )  # fmt: skip
    got = (await api.call("duty", "GET", "/api/hazards/1")).json()
    assert [(e["action"], e["actor"], e["from"], e["to"]) for e in got["timeline"]] == [
        ("found", "王值班 (wang)", None, "open"),
        ("start", "王值班 (wang)", "open", "rectifying"),
        ("rectified", "李四应 (li)", "rectifying", "awaiting_verification"),
        ("verification_failed", "带班领导 (juzhang)", "awaiting_verification", "rectifying"),
        ("rectified", "李四应 (li)", "rectifying", "awaiting_verification"),
        ("verified", "局值班员 (ju)", "awaiting_verification", "closed"),
    ]
    assert got["timeline"][-1]["at"] == "2026-11-18T19:08:40.000+08:00"
    # Another site's hazard is unknown, to read and to act on.
    for method, url, body in (
        ("GET", "/api/hazards/1", None),
        ("POST", "/api/hazards/1/transition", {"to": "rectifying"}),
    ):
        r = await api.call("anning", method, url, body)
        assert (r.status_code, r.json()) == (404, {"error": "unknown hazard", "detail": "1"})
    assert (await api.call("duty", "GET", "/api/hazards/99")).status_code == 404
    r = await api.step("duty", 1, "reopened")
    assert r.status_code == 422


async def test_a_general_hazard_is_closed_by_the_institution(api: Api) -> None:
    await api.add()
    for to in ("rectifying", "awaiting_verification", "closed"):
        assert (await api.step("duty", 1, to)).status_code == 200


async def test_list_filters_and_overdue(api: Api) -> None:
    await api.add()  # deadline 2026-11-25 18:00
    await api.add(level="major", deadline=None)
    await api.add("anning", site="anning")
    await api.step("duty", 2, "rectifying")

    async def ids(who: str, query: str = "") -> list[int]:
        r = await api.call(who, "GET", f"/api/hazards{query}")
        assert r.status_code == 200, r.text
        return [h["id"] for h in r.json()["hazards"]]

    assert await ids("bureau") == [1, 2, 3]
    assert await ids("duty") == [1, 2]
    assert await ids("anning") == [3]
    assert await ids("bureau_anning") == [3]
    assert await ids("bureau", "?site=anning") == [3]
    assert await ids("bureau", "?status=rectifying") == [2]
    assert await ids("bureau", "?level=major") == [2]
    assert await ids("bureau", "?overdue=true") == []
    api.now[0] = T0 + 8 * DAY
    assert await ids("bureau", "?overdue=true") == [1, 3]
    assert await ids("duty", "?overdue=true") == [1]
    r = await api.call("duty", "GET", "/api/hazards?site=anning")
    assert (r.status_code, r.json()) == (404, {"error": "unknown site", "detail": "anning"})
    for query in ("?status=done", "?level=x", "?format=csv"):
        assert (await api.call("bureau", "GET", f"/api/hazards{query}")).status_code == 422
    assert (await api.call("anon", "GET", "/api/hazards")).status_code == 401


async def test_the_ledger_xlsx_reads_back(api: Api) -> None:
    await api.add(description='=HYPERLINK("x")')
    await api.add("bureau", site="anning", level="major", location="食堂", deadline=None)
    for to in ("rectifying", "awaiting_verification"):
        await api.step("anning", 2, to)
    api.now[0] = T0 + 3600
    await api.step("bureau", 2, "closed", "合格")
    api.now[0] = T0 + 8 * DAY
    r = await api.call("bureau", "GET", "/api/hazards?format=xlsx")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XLSX_MIME
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == [LEDGER_SHEET] == ["重大事故隐患清单"]
    rows = list(wb[LEDGER_SHEET].iter_rows(values_only=True))
    assert rows[0] == LEDGER_HEADERS == (
        "序号", "单位", "隐患部位", "隐患描述", "等级", "责任人", "整改措施", "整改时限",
        "整改情况", "核查人", "核查时间",
    )  # fmt: skip
    assert rows[1:] == [
        (1, "城区幸福养老服务中心", "厨房", '=HYPERLINK("x")', "一般", "李四应", "更换软管",
         datetime(2026, 11, 25, 18, 0), "待整改（逾期）", None, None),
        (2, "安宁儿童福利院", "食堂", "燃气软管老化", "重大", "李四应", "更换软管", None,
         "已销号", "局值班员 (ju)", datetime(2026, 11, 18, 20, 6, 40)),
    ]  # fmt: skip
    assert wb[LEDGER_SHEET].cell(2, 4).data_type == "s"  # a formula stays text
    r = await api.call("duty", "GET", "/api/hazards?format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(r.content))[LEDGER_SHEET]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 2  # the header and xingfu's one hazard


async def test_a_notice_is_issued_received_and_closes_with_its_hazards(api: Api) -> None:
    for _ in range(2):
        await api.add()
    await api.add("anning", site="anning")
    notice = {
        "site": "xingfu", "hazard_ids": [1, 2], "person_in_charge": "张杰荣",
        "deadline": "2026-11-30T17:00+08:00", "requirements": "限期整改\n整改后书面报告",
    }  # fmt: skip
    for who in ("duty", "admin"):
        assert (await api.call(who, "POST", "/api/notices", notice)).status_code == 403
    r = await api.call("bureau_anning", "POST", "/api/notices", notice)
    assert (r.status_code, r.json()["error"]) == (404, "unknown site")
    r = await api.call("bureau", "POST", "/api/notices", notice | {"hazard_ids": [1, 3]})
    assert (r.status_code, r.json()["error"]) == (422, "invalid request")
    r = await api.call("bureau", "POST", "/api/notices", notice)
    assert r.status_code == 201, r.text
    n = r.json()
    assert (n["id"], n["number"], n["state"], n["issued_by"], n["hazard_ids"]) == (
        1, "整改〔2026〕第1号", "issued", "局值班员 (ju)", [1, 2],
    )  # fmt: skip
    second = await api.call("leader", "POST", "/api/notices", notice | {"hazard_ids": [2]})
    assert second.json()["number"] == "整改〔2026〕第2号"

    assert [x["id"] for x in (await api.call("duty", "GET", "/api/notices")).json()["notices"]] == [
        2,
        1,
    ]
    assert (await api.call("anning", "GET", "/api/notices")).json()["notices"] == []
    r = await api.call("anning", "GET", "/api/notices/1")
    assert (r.status_code, r.json()) == (404, {"error": "unknown notice", "detail": "1"})
    assert (await api.call("anning", "POST", "/api/notices/1/receipt")).status_code == 404
    assert (await api.call("bureau", "POST", "/api/notices/1/receipt")).status_code == 403

    html = await api.call("duty", "GET", "/api/notices/1?format=html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    printed = (
        "整改通知书", "整改〔2026〕第1号", "城区幸福养老服务中心", "张杰荣", "2026年11月30日",
        "燃气软管老化", "（未签收）",
    )  # fmt: skip
    for text in printed:
        assert text in html.text, text

    r = await api.call("manager", "POST", "/api/notices/1/receipt")
    assert (r.status_code, r.json()["state"], r.json()["received_by"]) == (
        200, "received", "李四应 (li)",
    )  # fmt: skip
    assert (await api.call("duty", "POST", "/api/notices/1/receipt")).status_code == 409

    for to in ("rectifying", "awaiting_verification", "closed"):
        await api.step("duty", 1, to)
    assert (await api.call("duty", "GET", "/api/notices/1")).json()["state"] == "received"
    api.now[0] = T0 + DAY
    for to in ("rectifying", "awaiting_verification", "closed"):
        await api.step("duty", 2, to)
    got = (await api.call("bureau", "GET", "/api/notices/1")).json()
    assert (got["state"], got["closed_at"]) == ("closed", "2026-11-19T19:06:40.000+08:00")
    assert [h["status"] for h in got["hazards"]] == [HazardStatus.CLOSED.value] * 2
    assert (await api.call("bureau", "GET", "/api/notices/2")).json()["state"] == "closed"


async def test_every_change_is_on_the_audit_trail(api: Api) -> None:
    await api.add()
    await api.add("duty", site="anning")  # refused: unknown to wang
    await api.step("duty", 1, "rectifying", "已安排")
    await api.step("duty", 1, "closed")  # refused: not a step
    await api.call("bureau", "POST", "/api/notices", {
        "site": "xingfu", "hazard_ids": [1], "person_in_charge": "张杰荣", "requirements": "整改",
    })  # fmt: skip
    await api.call("duty", "POST", "/api/notices/1/receipt")
    rows = await api.gw.audit.query(since=None, until=None, sites=None, actor=None, action=None,
                                    limit=100)  # fmt: skip
    got = [(r.actor, r.action, r.site, r.target, r.result) for r in reversed(rows)]
    assert got == [
        ("wang", "hazard.add", "xingfu", "xingfu", "ok"),
        ("wang", "hazard.add", None, "anning", "refused"),
        ("wang", "hazard.transition", "xingfu", "1", "ok"),
        ("wang", "hazard.transition", "xingfu", "1", "refused"),
        ("ju", "notice.issue", "xingfu", "xingfu", "ok"),
        ("wang", "notice.receipt", "xingfu", "1", "ok"),
    ]
    details = [r.detail for r in reversed(rows)]
    assert details[0] == {"id": 1, "level": "general", "source": "inspection"}
    assert details[2] == {"from": "open", "to": "rectifying", "note": "已安排"}
    assert details[4] == {"id": 1, "number": "整改〔2026〕第1号", "hazards": "1"}


async def test_ids_beyond_sqlite_integers_are_refused_not_a_server_error(api: Api) -> None:
    """Found by schemathesis: an id past 2**63 overflowed in the store (500)."""
    huge = 2**70
    for who, method, url, body in (
        ("admin", "GET", f"/api/hazards/{huge}", None),
        ("duty", "POST", f"/api/hazards/{huge}/transition", {"to": "rectifying"}),
        ("bureau", "GET", f"/api/notices/{huge}", None),
        ("duty", "POST", f"/api/notices/{huge}/receipt", None),
        ("bureau", "POST", "/api/notices", {"site": "xingfu", "hazard_ids": [huge],
                                            "person_in_charge": "张", "requirements": "改"}),
    ):  # fmt: skip
        r = await api.call(who, method, url, body)
        assert r.status_code == 422, (url, r.status_code, r.text)


async def test_edit_fields_and_the_timeline_says_what_changed(api: Api) -> None:
    await api.add()  # deadline 2026-11-25 18:00
    api.now[0] = T0 + 60
    r = await api.call("manager", "PATCH", "/api/hazards/1", {
        "deadline": "2026-11-30T18:00+08:00", "measure": "更换软管并加装卡箍",
        "location": "厨房",  # as it was: not a change
    })  # fmt: skip
    assert r.status_code == 200, r.text
    h = r.json()
    assert (h["deadline"], h["measure"], h["location"], h["status"]) == (
        "2026-11-30T18:00:00.000+08:00", "更换软管并加装卡箍", "厨房", "open",
    )  # fmt: skip
    # The institution edits while rectifying too; the status stays where it was.
    await api.step("duty", 1, "rectifying")
    api.now[0] = T0 + 120
    r = await api.call("duty", "PATCH", "/api/hazards/1", {"responsible": "王值班"})
    assert (r.status_code, r.json()["status"]) == (200, "rectifying")
    got = (await api.call("duty", "GET", "/api/hazards/1")).json()
    assert [(e["action"], e["actor"], e["from"], e["to"], e["note"]) for e in got["timeline"]] == [
        ("found", "王值班 (wang)", None, "open", None),
        ("edited", "李四应 (li)", "open", "open",
         "整改措施: 更换软管 → 更换软管并加装卡箍\n整改期限: 2026-11-25 18:00 → 2026-11-30 18:00"),
        ("start", "王值班 (wang)", "open", "rectifying", None),
        ("edited", "王值班 (wang)", "rectifying", "rectifying", "责任人: 李四应 → 王值班"),
    ]  # fmt: skip
    assert got["timeline"][1]["at"] == "2026-11-18T19:07:40.000+08:00"
    # Nothing that differs: the hazard as it was, and no entry.
    r = await api.call("duty", "PATCH", "/api/hazards/1", {"responsible": "王值班"})
    assert r.status_code == 200
    assert len((await api.call("duty", "GET", "/api/hazards/1")).json()["timeline"]) == 4
    # Bodies: at least one field, no unknown one, bounded text, a deadline with its offset.
    for body in ({}, {"status": "closed"}, {"location": ""}, {"location": "x" * 201},
                 {"deadline": "2026-11-30 18:00"}, {"level": "huge"}):  # fmt: skip
        r = await api.call("duty", "PATCH", "/api/hazards/1", body)
        assert r.status_code == 422, (body, r.text)


async def test_only_the_bureau_changes_the_level(api: Api) -> None:
    await api.add(level="major")
    for who in ("duty", "manager", "admin"):
        r = await api.call(who, "PATCH", "/api/hazards/1", {"level": "general"})
        assert (r.status_code, r.json()) == (403, {
            "error": "edit refused",
            "detail": "only the bureau changes a hazard's level "
            "(a major hazard is verified by the bureau)",
        }), who  # fmt: skip
    # Nothing of a refused edit is written, the other fields neither.
    r = await api.call("duty", "PATCH", "/api/hazards/1", {"level": "general", "measure": "改"})
    assert r.status_code == 403
    got = (await api.call("duty", "GET", "/api/hazards/1")).json()
    assert (got["level"], got["measure"], len(got["timeline"])) == ("major", "更换软管", 1)
    # The level as it is is no change, for anyone.
    assert (
        await api.call("duty", "PATCH", "/api/hazards/1", {"level": "major"})
    ).status_code == 200
    r = await api.call("leader", "PATCH", "/api/hazards/1", {"level": "general"})
    assert (r.status_code, r.json()["level"], r.json()["level_label"]) == (200, "general", "一般")
    got = (await api.call("duty", "GET", "/api/hazards/1")).json()
    assert got["timeline"][-1]["note"] == "隐患等级: 重大 → 一般"
    assert got["timeline"][-1]["actor"] == "带班领导 (juzhang)"


async def test_a_closed_hazard_and_another_sites_are_not_edited(api: Api) -> None:
    await api.add()
    await api.add("anning", site="anning")
    for to in ("rectifying", "awaiting_verification", "closed"):
        await api.step("duty", 1, to)
    for who in ("duty", "bureau"):
        r = await api.call(who, "PATCH", "/api/hazards/1", {"measure": "补记"})
        assert (r.status_code, r.json()) == (409, {
            "error": "edit refused", "detail": "the hazard is closed: its record is not edited",
        })  # fmt: skip
    for who, hazard in (("anning", 1), ("bureau_anning", 1), ("duty", 2), ("duty", 99)):
        r = await api.call(who, "PATCH", f"/api/hazards/{hazard}", {"measure": "改"})
        assert (r.status_code, r.json()["error"]) == (404, "unknown hazard"), (who, hazard)
    assert (await api.call("anon", "PATCH", "/api/hazards/2", {"measure": "改"})).status_code == 401
    r = await api.call("bureau_anning", "PATCH", "/api/hazards/2", {"measure": "加装报警器"})
    assert r.status_code == 200  # the bureau corrects the hazards of the sites it reads


async def test_edits_are_on_the_audit_trail(api: Api) -> None:
    await api.add(level="major")
    await api.call("duty", "PATCH", "/api/hazards/1", {"location": "二楼厨房"})
    await api.call("duty", "PATCH", "/api/hazards/1", {"level": "general"})
    await api.call("anning", "PATCH", "/api/hazards/1", {"location": "x"})
    rows = await api.gw.audit.query(since=None, until=None, sites=None, actor=None,
                                    action="hazard.edit", limit=100)  # fmt: skip
    got = [(r.actor, r.site, r.target, r.result, r.detail) for r in reversed(rows)]
    assert got == [
        ("wang", "xingfu", "1", "ok", {"fields": "location", "changes": "位置: 厨房 → 二楼厨房"}),
        ("wang", "xingfu", "1", "refused", {"fields": "level", "status": 403,
                                            "error": "edit refused"}),
        ("zhao", None, "1", "refused", {"status": 404, "error": "unknown hazard"}),
    ]  # fmt: skip
