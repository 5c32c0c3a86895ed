"""Every route, with every role and with another site's resources (issue 11): one table says
what each caller gets, and a route the table does not know fails the test, so that a new
route is given its roles when it is added.

Callers: nobody (no credentials), the institution's three roles on xingfu, the bureau's two
roles, and an admin, each with a token issued to a person. `OK` is an action the caller may
take: 2xx, or 409 when the alarm's state forbids it (then the caller was let through).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import websockets

from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.incidents.model import Incident
from gateway.people.model import Person, Role
from tests.conftest import Mosquitto, Probe, free_port, running_gateway, served
from tests.support.overview import two_sites

OK = "ok"
CALLERS = (
    "anon", "duty", "safety_manager", "legal_representative", "bureau", "bureau_leader", "admin",
)  # fmt: skip
XINGFU = frozenset({"xingfu"})
PERSONS = {
    "duty": Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"})),
    "safety_manager": Person("li", "李四应", Role.SAFETY_MANAGER, frozenset({"xingfu"})),
    "legal_representative": Person("zhang", "张杰荣", Role.LEGAL_REPRESENTATIVE, XINGFU),
    "bureau": Person("ju", "局值班员", Role.BUREAU, frozenset()),
    "bureau_leader": Person("juzhang", "带班领导", Role.BUREAU_LEADER, frozenset()),
    "admin": Person("root1", "管理员", Role.ADMIN, frozenset()),
}
TARGET = Person("target1", "被管理者", Role.DUTY, frozenset({"xingfu"}))


def row(anon: Any, site_roles: Any, bureau: Any, admin: Any) -> dict[str, Any]:
    """Expected per caller: the institution's three roles alike, the bureau's two alike."""
    return {
        "anon": anon, "duty": site_roles, "safety_manager": site_roles,
        "legal_representative": site_roles, "bureau": bureau, "bureau_leader": bureau,
        "admin": admin,
    }  # fmt: skip


EVERYONE = row(200, 200, 200, 200)
SIGNED_IN = row(401, 200, 200, 200)
FOREIGN_READ = row(401, 404, 200, 200)
ACT_OWN = row(401, OK, 403, OK)
ACT_FOREIGN = row(401, 404, 403, OK)
ADMIN_ONLY = row(401, 403, 403, OK)
WRONG_CODE = frozenset({404, 429})
HAZARD = {"location": "厨房", "description": "软管老化", "level": "major", "responsible": "李四应",
          "measure": "更换"}  # fmt: skip
NOTICE = {"person_in_charge": "张杰荣", "requirements": "限期整改"}
# The gateway runs on the real clock; a self-report is for today or yesterday, and today at
# import is one of the two whenever the request is made.
TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
CHECKLIST = {
    "items": [
        {"item": i, "result": "ok"}
        for i in ("gas", "electrical", "fire_exits", "heating", "kitchen", "residents_visited")
    ]
}

INCIDENT_REPORT = dict.fromkeys(
    ("what_happened", "where", "people_affected", "measures_taken", "current_state", "follow_up"),
    "见附件",
)
# (method, path, body, expected): paths are filled in with the test's alarm ids.
TABLE: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("GET", "/api/health", None, EVERYONE),
    ("GET", "/metrics", None, EVERYONE),  # http.public_metrics defaults to true
    ("GET", "/openapi.json", None, SIGNED_IN),  # http.public_docs defaults to false
    ("GET", "/docs", None, SIGNED_IN),
    ("GET", "/", None, EVERYONE),  # the pages are files; what they show comes from the API
    ("GET", "/bureau", None, EVERYONE),
    ("GET", "/bureau/", None, row(307, 307, 307, 307)),  # to /bureau
    ("GET", "/login", None, EVERYONE),
    ("GET", "/console/console.js", None, EVERYONE),
    ("GET", "/static/shared/live.js", None, EVERYONE),
    ("GET", "/bureau/assets/bureau.js", None, EVERYONE),
    ("GET", "/api/sites", None, SIGNED_IN),
    ("GET", "/api/devices", None, SIGNED_IN),
    ("GET", "/api/devices/gas-kitchen", None, SIGNED_IN),
    ("GET", "/api/devices/gas-1", None, FOREIGN_READ),
    ("GET", "/api/devices/gas-kitchen/trend", None, SIGNED_IN),
    ("GET", "/api/devices/gas-1/trend", None, FOREIGN_READ),
    ("GET", "/api/alarms", None, SIGNED_IN),
    ("GET", "/api/alarms/{own}", None, SIGNED_IN),
    ("GET", "/api/alarms/{foreign}", None, FOREIGN_READ),
    ("POST", "/api/alarms/{own}/ack", {}, ACT_OWN),
    ("POST", "/api/alarms/{foreign}/ack", {}, ACT_FOREIGN),
    ("POST", "/api/alarms/{own}/close", {"disposition": "real"}, ACT_OWN),
    ("POST", "/api/alarms/{foreign}/close", {"disposition": "real"}, ACT_FOREIGN),
    ("POST", "/api/devices/valve-kitchen/commands", {"cmd": "close_valve"}, ACT_OWN),
    # anning's gas detector takes no valve command: 400 for the admin, after the checks
    ("POST", "/api/devices/gas-1/commands", {"cmd": "close_valve"}, row(401, 404, 403, 400)),
    ("PUT", "/api/devices/gas-kitchen/maintenance", {"minutes": 5}, ACT_OWN),
    ("PUT", "/api/devices/gas-1/maintenance", {"minutes": 5}, ACT_FOREIGN),
    ("DELETE", "/api/devices/gas-kitchen/maintenance", None, ACT_OWN),
    ("DELETE", "/api/devices/gas-1/maintenance", None, ACT_FOREIGN),
    ("GET", "/api/maintenance", None, SIGNED_IN),
    ("GET", "/api/reports/daily?site=xingfu", None, SIGNED_IN),
    ("GET", "/api/reports/daily?site=xingfu&format=html", None, SIGNED_IN),
    ("GET", "/api/reports/daily?site=xingfu&format=xlsx", None, SIGNED_IN),
    ("GET", "/api/reports/daily?site=anning", None, FOREIGN_READ),
    ("GET", "/api/reports/daily", None, row(401, 403, 200, 200)),  # the county report
    ("GET", "/api/overview", None, SIGNED_IN),
    ("GET", "/api/overview/sites/xingfu", None, SIGNED_IN),
    ("GET", "/api/overview/sites/anning", None, FOREIGN_READ),
    ("POST", "/api/login", {"login": "x-{caller}", "password": "not it"}, row(401, 401, 401, 401)),
    ("GET", "/api/me", None, SIGNED_IN),
    ("GET", "/api/users", None, ADMIN_ONLY),
    ("POST", "/api/users", {"login": "newone", "name": "新人", "role": "bureau"}, ADMIN_ONLY),
    ("PATCH", "/api/users/target1", {"name": "改名"}, ADMIN_ONLY),
    ("POST", "/api/users/target1/password", {"password": "a long new phrase"}, ADMIN_ONLY),
    ("GET", "/api/tokens", None, SIGNED_IN),
    ("POST", "/api/tokens", {"label": "script"}, row(401, OK, OK, OK)),
    ("DELETE", "/api/tokens/{target_token}", None, row(401, 404, 404, OK)),
    ("GET", "/api/audit", None, row(401, 403, 200, 200)),
    ("GET", "/api/audit?format=xlsx", None, row(401, 403, 200, 200)),
    ("GET", "/api/audit?site=anning", None, row(401, 403, 200, 200)),
    ("GET", "/api/incidents", None, SIGNED_IN),
    ("GET", "/api/incidents?site=anning", None, FOREIGN_READ),
    ("POST", "/api/incidents", {"site": "xingfu", "title": "火情"}, ACT_OWN),
    ("POST", "/api/incidents", {"site": "anning", "title": "火情"}, ACT_FOREIGN),
    ("GET", "/api/incidents/{own_incident}", None, SIGNED_IN),
    ("GET", "/api/incidents/{own_incident}?format=html", None, SIGNED_IN),
    ("GET", "/api/incidents/{foreign_incident}", None, FOREIGN_READ),
    ("POST", "/api/incidents/{own_incident}/phone-report", {"to_whom": "局"}, ACT_OWN),
    ("POST", "/api/incidents/{foreign_incident}/phone-report", {"to_whom": "局"}, ACT_FOREIGN),
    ("POST", "/api/incidents/{own_incident}/written-report", INCIDENT_REPORT, ACT_OWN),
    ("POST", "/api/incidents/{foreign_incident}/written-report", INCIDENT_REPORT, ACT_FOREIGN),
    ("POST", "/api/incidents/{own_incident}/follow-ups", {"text": "续报"}, ACT_OWN),
    ("POST", "/api/incidents/{foreign_incident}/follow-ups", {"text": "续报"}, ACT_FOREIGN),
    # The written report is in (the rows above): the first caller closes it, then 409.
    ("POST", "/api/incidents/{own_incident}/close", {"note": "结案"}, ACT_OWN),
    ("POST", "/api/incidents/{foreign_incident}/close", {"note": "结案"}, ACT_FOREIGN),
    # A past day: the first caller's report is in (late), later ones are 409 (it stands).
    ("PUT", f"/api/sites/xingfu/daily-checks/{TODAY}", CHECKLIST, row(401, OK, 403, 403)),
    ("PUT", f"/api/sites/anning/daily-checks/{TODAY}", CHECKLIST, row(401, 404, 403, 403)),
    ("GET", "/api/daily-checks", None, SIGNED_IN),
    ("GET", "/api/duty", None, SIGNED_IN),
    ("PUT", "/api/duty", {"scope": "xingfu", "people": []}, row(401, OK, 403, OK)),
    ("PUT", "/api/duty", {"scope": "anning", "people": []}, row(401, 404, 403, OK)),
    ("PUT", "/api/duty", {"scope": "bureau", "people": []}, row(401, 403, OK, OK)),
    ("POST", "/api/duty/handover", {"scope": "xingfu", "to": "target1"}, row(401, OK, 403, OK)),
    ("POST", "/api/logout", None, SIGNED_IN),
    # The hazard ledger (issue 12): ids in the order these rows make them. Hazards 1-6 are
    # xingfu's, 7-9 anning's (the bureau's and the admin's); notices 1-2 xingfu's, 3-4 anning's.
    ("POST", "/api/hazards", dict(HAZARD, site="xingfu"), row(401, OK, OK, OK)),
    ("POST", "/api/hazards", dict(HAZARD, site="anning"), row(401, 404, OK, OK)),
    ("GET", "/api/hazards", None, SIGNED_IN),
    ("GET", "/api/hazards?format=xlsx", None, SIGNED_IN),
    ("GET", "/api/hazards?site=anning", None, FOREIGN_READ),
    ("GET", "/api/hazards/suggestions", None, SIGNED_IN),
    ("GET", "/api/hazards/suggestions?site=anning", None, FOREIGN_READ),
    ("GET", "/api/hazards/1", None, SIGNED_IN),
    ("GET", "/api/hazards/7", None, FOREIGN_READ),
    # The institution rectifies (the first 200, then 409: already rectifying); the bureau
    # only verifies.
    ("POST", "/api/hazards/1/transition", {"to": "rectifying"}, ACT_OWN),
    ("POST", "/api/hazards/7/transition", {"to": "rectifying"}, ACT_FOREIGN),
    # Correcting a hazard: the institution its own, the bureau those it reads (the level
    # would be the bureau's alone).
    ("PATCH", "/api/hazards/1", {"measure": "更换 {caller}"}, row(401, OK, OK, OK)),
    ("PATCH", "/api/hazards/7", {"measure": "更换 {caller}"}, row(401, 404, OK, OK)),
    ("POST", "/api/notices", dict(NOTICE, site="xingfu", hazard_ids=[1]), row(401, 403, OK, 403)),
    ("POST", "/api/notices", dict(NOTICE, site="anning", hazard_ids=[7]), row(401, 404, OK, 403)),
    ("GET", "/api/notices", None, SIGNED_IN),
    ("GET", "/api/notices/1", None, SIGNED_IN),
    ("GET", "/api/notices/1?format=html", None, SIGNED_IN),
    ("GET", "/api/notices/3", None, FOREIGN_READ),
    ("POST", "/api/notices/1/receipt", None, row(401, OK, 403, 403)),  # then 409: received
    ("POST", "/api/notices/3/receipt", None, row(401, 404, 403, 403)),
    # A phone link's code is its own credential: no session or token is asked for. A wrong
    # code is unknown to everyone, and after five from one address they are all refused.
    ("GET", "/a/0000000000000000", None, row(*[WRONG_CODE] * 4)),
    ("POST", "/a/0000000000000000", None, row(*[WRONG_CODE] * 4)),
]
# Routes reached otherwise: the live feed below; mounts are listed by one file each above.
NOT_IN_TABLE = {("WS", "/api/live")}


def _routes(app: Any) -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, path template, its pattern) of every route the app has."""
    found: list[tuple[str, str, re.Pattern[str]]] = []

    def walk(routes: Sequence[Any]) -> None:
        for r in routes:
            if type(r).__name__ == "_IncludedRouter":
                walk(r.original_router.routes)
            elif type(r).__name__ == "APIWebSocketRoute":
                found.append(("WS", r.path, r.path_regex))
            elif getattr(r, "methods", None):
                found.extend((m, r.path, r.path_regex) for m in r.methods if m != "HEAD")

    walk(app.router.routes)
    return found


def _passes(status: int, expected: Any) -> bool:
    if isinstance(expected, frozenset):
        return status in expected
    if expected == OK:
        return 200 <= status < 300 or status == 409
    return bool(status == expected)


@pytest.mark.broker
async def test_every_route_with_every_role_and_another_site(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    config = parse_config(two_sites(tmp_path / "data", broker.port))
    async with running_gateway(config) as rg:
        gw = rg.gw
        people = gw.people
        tokens: dict[str, dict[str, str]] = {"anon": {}}
        for caller, person in PERSONS.items():
            await asyncio.to_thread(people.add, person, None, 0.0)
            _, secret = await asyncio.to_thread(people.issue_token, person.login, "t", "test", 0.0)
            tokens[caller] = {"authorization": f"Bearer {secret}"}
        await asyncio.to_thread(people.add, TARGET, None, 0.0)
        target_token, _ = await asyncio.to_thread(people.issue_token, "target1", "t", "test", 0.0)

        await probe.telemetry("gas-kitchen", {"lel": 40})
        await probe.telemetry("gas-1", {"lel": 40}, site="anning")
        own = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")
        foreign = await probe.wait_for("anning/alarms", lambda m: m["type"] == "gas_leak")
        ids = {"own": own["id"], "foreign": foreign["id"], "target_token": target_token.id}
        for key, site in (("own_incident", "xingfu"), ("foreign_incident", "anning")):
            ids[key] = f"inc-{site}"
            incident = Incident(ids[key], site, None, "火情", 0.0, "test")
            await asyncio.to_thread(gw.incidents.open_incident, incident)

        app = create_api(gw)
        called = [(m, p.format(**ids).split("?")[0]) for m, p, _, _ in TABLE]
        missing = [
            (method, template)
            for method, template, pattern in _routes(app)
            if (method, template) not in NOT_IN_TABLE
            and not any(m == method and pattern.match(url) for m, url in called)
        ]
        assert not missing, f"routes with no row in the roles table: {missing}"

        wrong = []
        api = rg.api
        for method, path, body, expected in TABLE:
            url = path.format(**ids)
            for caller in CALLERS:
                sent = (
                    {
                        k: v.format(caller=caller) if isinstance(v, str) else v
                        for k, v in body.items()
                    }
                    if body
                    else body
                )
                r = await api.request(method, url, json=sent, headers=tokens[caller])
                if not _passes(r.status_code, expected[caller]):
                    wrong.append(f"{caller:22} {method} {path}: {r.status_code} {r.text[:80]}")
                if r.status_code == 404 and "anning" not in url:  # an id, not a name: not told
                    assert "anning" not in r.text, (caller, url)
        assert not wrong, "\n".join(wrong)

        health = (await api.get("/api/health")).json()
        assert health["detail"] is False and "broker" not in health
        assert "broker" in (await api.get("/api/health", headers=tokens["bureau"])).json()

        async with served(app, free_port()) as port:
            url = f"ws://127.0.0.1:{port}/api/live"
            # refused before the handshake completes (the feed closes it unaccepted)
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(url)
            assert refused.value.response.status_code == 403
            for caller in CALLERS[1:]:
                async with websockets.connect(url, additional_headers=tokens[caller]) as ws:
                    first = await asyncio.wait_for(ws.recv(), 5)
                    assert '"snapshot"' in str(first), caller


@pytest.mark.broker
async def test_metrics_and_docs_can_be_closed_to_the_anonymous(
    tmp_path: Path, broker: Mosquitto
) -> None:
    data = two_sites(tmp_path / "data", broker.port)
    data["http"] = {"public_metrics": False, "public_docs": True}
    async with running_gateway(parse_config(data)) as rg:
        await asyncio.to_thread(rg.gw.people.add, PERSONS["bureau"], None, 0.0)
        _, secret = await asyncio.to_thread(rg.gw.people.issue_token, "ju", "t", "test", 0.0)
        api = rg.api
        assert (await api.get("/metrics")).status_code == 401
        ok = await api.get("/metrics", headers={"authorization": f"Bearer {secret}"})
        assert ok.status_code == 200 and "gateway_" in ok.text
        assert (await api.get("/openapi.json")).status_code == 200
        assert (await api.get("/docs")).status_code == 200
