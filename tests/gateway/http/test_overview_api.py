"""The bureau overview over HTTP: `GET /api/overview` and the drill-down against a real
gateway and broker, auth, and the bureau page's files."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.alarms.book import Alarm
from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.hazards.model import HazardStatus
from gateway.http.app import create_api
from gateway.http.overview import register_overview_routes
from gateway.http.static import BUREAU_DIR
from gateway.incidents.model import Incident, PhoneReport
from gateway.incidents.readonly import incidents_touching
from gateway.incidents.store import new_incident_id
from gateway.overview.queries import (
    WINDOW_S,
)
from gateway.people.model import Person, Role
from rules.model import AlarmType, DeviceRef
from tests.conftest import (
    REPO_ROOT,
    FakeClock,
    Mosquitto,
    Probe,
    answer_valve,
    running_gateway,
    until,
)
from tests.support.overview import daily_check, hazard, seed_history, two_sites

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "safety-gateway.json"
H = 3600.0


# ====================================================================== the HTTP API


@contextlib.asynccontextmanager
async def overview_api(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api(gw)
    register_overview_routes(app)
    register_overview_routes(app)  # idempotent (create_api may do it one day)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _open_of(gw: Gateway, site: str, type: AlarmType) -> Alarm | None:
    return next((a for a in gw.book.open_alarms() if a.site == site and a.type is type), None)


@pytest.mark.broker
async def test_overview_figures(tmp_path: Path, broker: Mosquitto, probe: Probe) -> None:
    t0 = time.time()
    data_dir = tmp_path / "data"
    await seed_history(data_dir, t0)
    config = parse_config(two_sites(data_dir, broker.port))
    async with running_gateway(config) as rg, overview_api(rg.gw) as api:
        gw = rg.gw
        # xingfu: a gas leak (the valve closes as it should); anning: one detector
        # reporting, the smoke detector's will says it is gone, the button never heard.
        await probe.telemetry("valve-kitchen", {"open": 1})
        await probe.telemetry("gas-kitchen", {"lel": 26.0})
        await answer_valve(probe)
        valve = DeviceRef("xingfu", "valve-kitchen")
        await until(
            lambda: gw.engine.status(valve).values.get("open", (1, 0))[0] == 0, what="closed"
        )
        await probe.telemetry("gas-1", {"lel": 0.0}, site="anning")
        await probe.publish("safety/anning/smoke-1/status", "offline")
        gas = await until(lambda: _open_of(gw, "xingfu", AlarmType.GAS_LEAK), what="gas alarm")
        off = await until(
            lambda: _open_of(gw, "anning", AlarmType.DEVICE_OFFLINE), what="offline alarm"
        )
        await until(lambda: gw.engine.status(DeviceRef("anning", "gas-1")).last_seen, what="gas-1")

        r = await api.get("/api/overview")
        assert r.status_code == 200, r.text
        body = r.json()
        now = _ts(body["generated_at"])
        assert body["window_s"] == 86400
        assert (body["sort"], body["reverse"], body["kind"]) == ("severity", False, None)
        assert body["county"] == "县民政局"
        assert body["gateway"] == "test-gw"
        sites = {s["id"]: s for s in body["sites"]}
        assert [s["id"] for s in body["sites"]] == ["xingfu", "anning"]  # critical first

        devices = {(d["site"], d["id"]): d for d in (await api.get("/api/devices")).json()}

        def last_contact(site: str) -> str:
            seen = [
                str(d["last_seen"]) for (s, _), d in devices.items() if s == site and d["last_seen"]
            ]
            return max(seen, key=_ts)

        # whole seconds waited (the ISO times here are to the millisecond: allow one)
        for s in body["sites"]:
            waited = s["oldest_unacknowledged"].pop("age_s")
            raised = _ts(s["oldest_unacknowledged"]["raised_at"])
            assert abs(waited - (now - raised)) <= 1.001, s["id"]
        x = sites["xingfu"]
        # The closed loop's figures: test_overview_closed_loop; here nothing is open.
        assert x.pop("closed_loop")["open_incidents"] == 0
        assert x == {
            "id": "xingfu",
            "name": "城区幸福养老服务中心",
            "kind": "elderly_care",
            "kind_label": "养老机构",
            "served_by": "self",
            "status": "alarm",
            "status_reason": "critical_open",
            "devices": {"online": 2, "offline": 0, "fault": 0, "unknown": 3},
            "device_total": 5,
            "open_alarms": {"critical": 1, "major": 0, "minor": 0, "warning": 0},
            "open_total": 1,
            "unacknowledged": 1,
            "oldest_unacknowledged": {
                "id": gas.id,
                "site": "xingfu",
                "type": "gas_leak",
                "severity": "critical",
                "raised_at": gw.clockface.iso(gas.raised_at),
                "device": "gas-kitchen",
                "location": "一楼厨房",
            },
            "last_contact": last_contact("xingfu"),
            "online_rate_24h": 1.0,  # two known devices, never offline; three unknown
            "edge": None,  # served here, not by an edge gateway
        }
        a = sites["anning"]
        # gas-1: 4 h of its seeded 10 h outage lie in the window; smoke-1: offline since its
        # will; btn-1 is unknown (never heard since start), so its history does not count.
        window_start = now - WINDOW_S
        offline_s = ((t0 - 20 * H) - window_start) + (now - off.raised_at)
        expected_rate = (2 * WINDOW_S - offline_s) / (2 * WINDOW_S)
        assert a.pop("online_rate_24h") == pytest.approx(expected_rate, abs=1.5e-4)
        assert 0.91 < expected_rate < 0.92  # about 4 h of 48 device-hours
        assert a.pop("closed_loop")["overdue_hazards"] == 0
        assert a == {
            "id": "anning",
            "name": "安宁儿童福利院",
            "kind": "child_welfare",
            "kind_label": "儿童福利机构",
            "served_by": "self",
            "status": "warning",
            "status_reason": "minor_open",
            "devices": {"online": 1, "offline": 1, "fault": 0, "unknown": 1},
            "device_total": 3,
            "open_alarms": {"critical": 0, "major": 0, "minor": 1, "warning": 0},
            "open_total": 1,
            "unacknowledged": 1,
            "oldest_unacknowledged": {
                "id": off.id,
                "site": "anning",
                "type": "device_offline",
                "severity": "minor",
                "raised_at": gw.clockface.iso(off.raised_at),
                "device": "smoke-1",
                "location": "二楼走廊",
            },
            "last_contact": devices[("anning", "gas-1")]["last_seen"],  # smoke-1's will: none
            "edge": None,
        }

        totals = body["totals"]
        county_rate = totals.pop("online_rate_24h")
        county_waited = totals["oldest_unacknowledged"].pop("age_s")
        assert abs(county_waited - (now - gas.raised_at)) <= 1.001
        assert county_rate == pytest.approx((4 * WINDOW_S - offline_s) / (4 * WINDOW_S), abs=1.5e-4)
        assert totals.pop("closed_loop")["daily_checks"]["missing"] == 2
        assert totals == {
            "sites": 2,
            "by_status": {"alarm": 1, "warning": 1, "ok": 0},
            "devices": {"online": 3, "offline": 1, "fault": 0, "unknown": 4},
            "device_total": 8,
            "open_alarms": {"critical": 1, "major": 0, "minor": 1, "warning": 0},
            "open_total": 2,
            "unacknowledged": 2,
            "oldest_unacknowledged": x["oldest_unacknowledged"] | {"site_name": x["name"]},
            "last_contact": max(last_contact("xingfu"), last_contact("anning"), key=_ts),
        }

        # Orders and the kind filter.
        async def order(**params: str) -> list[str]:
            got = await api.get("/api/overview", params=params)
            assert got.status_code == 200, got.text
            return [s["id"] for s in got.json()["sites"]]

        assert await order(sort="severity", reverse="true") == ["anning", "xingfu"]
        assert await order(sort="online_rate") == ["anning", "xingfu"]
        assert await order(sort="kind") == ["xingfu", "anning"]  # elderly care, child welfare
        # Unicode order here (城 U+57CE < 安 U+5B89); the page sorts with Chinese collation
        assert await order(sort="name") == ["xingfu", "anning"]

        def heard(site: str) -> float:
            refs = [r for r in gw.inventory.devices if r.site == site]
            return max(t for r in refs if (t := gw.engine.status(r).last_seen) is not None)

        expected = sorted(["xingfu", "anning"], key=heard)
        assert await order(sort="last_contact") == expected
        filtered = (await api.get("/api/overview", params={"kind": "child_welfare"})).json()
        assert [s["id"] for s in filtered["sites"]] == ["anning"]
        assert filtered["totals"]["sites"] == 1
        assert filtered["totals"]["devices"]["unknown"] == 1
        assert filtered["kind"] == "child_welfare"
        for bad in ({"sort": "size"}, {"kind": "school"}):
            r = await api.get("/api/overview", params=bad)
            assert r.status_code == 422
            assert r.json()["error"] == "invalid request"

        # Drill-down.
        r = await api.get("/api/overview/sites/anning")
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["window_s"] == 86400
        site = d["site"]
        assert site["id"] == "anning"
        assert site["status"] == "warning"
        assert site["devices"] == a["devices"]
        assert site["open_alarms"] == a["open_alarms"]
        assert site["address"] == "启东市安宁路1号"
        assert site["contacts"] == [
            {"name": "赵院长", "role": "legal_representative", "phone": "+8613800000011"}
        ]
        assert [(v["id"], v["status"]) for v in d["devices"]] == [
            ("gas-1", "online"),
            ("smoke-1", "offline"),
            ("btn-1", "unknown"),
        ]
        assert d["devices"][0]["values"] == {"lel": 0.0}
        assert d["devices"][1]["location"] == "二楼走廊"
        assert [x["id"] for x in d["open_alarms"]] == [off.id]
        assert d["open_alarms"][0]["type"] == "device_offline"
        assert d["open_alarms"][0]["location"] == "二楼走廊"
        assert "timeline" not in d["open_alarms"][0]
        # raised in the last 24 h, newest first: the seeded gas-1 outage (30 h ago) is not
        recent = [(x["id"], x["state"]) for x in d["recent_alarms"]]
        assert recent == [(off.id, "active"), ("seed-btn-1", "closed")]
        assert d["recent_alarms"][1]["closed_by"] == "王值班"
        x_detail = (await api.get("/api/overview/sites/xingfu")).json()
        assert [v["id"] for v in x_detail["devices"]] == [
            "gas-kitchen", "valve-kitchen", "btn-lobby", "efm-1", "co-boiler",
        ]  # fmt: skip
        assert [x["id"] for x in x_detail["open_alarms"]] == [gas.id]
        assert x_detail["site"]["online_rate_24h"] == 1.0
        r = await api.get("/api/overview/sites/nowhere")
        assert r.status_code == 404
        assert r.json() == {"error": "unknown site", "detail": "nowhere"}

        # Once acknowledged, an alarm is no longer waiting: anning has none waiting.
        r = await api.post(f"/api/alarms/{off.id}/ack", json={"by": "局值班"})
        assert r.status_code == 200
        a2 = {s["id"]: s for s in (await api.get("/api/overview")).json()["sites"]}["anning"]
        assert a2["unacknowledged"] == 0
        assert a2["oldest_unacknowledged"] is None
        assert a2["status"] == "warning"  # still open


@pytest.mark.broker
async def test_overview_auth(
    tmp_path: Path, broker: Mosquitto, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOK_DUTY", "duty-secret")
    monkeypatch.setenv("TOK_BUREAU", "bureau-secret")
    data = two_sites(tmp_path / "data", broker.port)
    data["http"] = {
        "host": "127.0.0.1",
        "port": 8080,
        "tokens": [
            {"name": "duty-xingfu", "token_env": "TOK_DUTY", "role": "duty", "sites": ["xingfu"]},
            {"name": "bureau", "token_env": "TOK_BUREAU", "role": "bureau"},
        ],
    }
    async with running_gateway(parse_config(data)) as rg, overview_api(rg.gw) as api:
        await probe.publish("safety/anning/smoke-1/status", "offline")
        await until(lambda: _open_of(rg.gw, "anning", AlarmType.DEVICE_OFFLINE))

        def auth(token: str) -> dict[str, str]:
            return {"authorization": f"Bearer {token}"}

        assert (await api.get("/api/overview")).status_code == 401
        assert (await api.get("/api/overview", headers=auth("wrong"))).status_code == 401
        assert (await api.get("/api/overview/sites/xingfu")).status_code == 401

        duty = (await api.get("/api/overview", headers=auth("duty-secret"))).json()
        assert [s["id"] for s in duty["sites"]] == ["xingfu"]
        assert duty["totals"]["sites"] == 1
        assert duty["totals"]["open_total"] == 0, "another site's alarm is not counted"
        assert duty["totals"]["devices"]["offline"] == 0
        r = await api.get("/api/overview/sites/anning", headers=auth("duty-secret"))
        assert r.status_code == 404, "another site's duty officer does not see it"
        r = await api.get("/api/overview/sites/xingfu", headers=auth("duty-secret"))
        assert r.status_code == 200

        bureau = (await api.get("/api/overview", headers=auth("bureau-secret"))).json()
        assert [s["id"] for s in bureau["sites"]] == ["anning", "xingfu"]
        assert bureau["totals"]["open_total"] == 1
        r = await api.get("/api/overview/sites/anning", headers=auth("bureau-secret"))
        assert r.status_code == 200
        # The page itself is public (like the console); its data needs the token.
        page = await api.get("/bureau")
        assert page.status_code == 200


# =================================================================== the page's files
async def test_bureau_page_and_assets_are_served(tmp_path: Path) -> None:
    config = parse_config(two_sites(tmp_path / "data", 1))
    gw = Gateway(config)  # not started: the page and its files need no gateway
    gw.people.open()  # ...but the links to /docs ask whether anyone can sign in
    async with overview_api(gw) as api:
        r = await api.get("/bureau")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        assert "安全监管总览" in r.text
        r = await api.get("/bureau/?token=x", follow_redirects=False)
        assert r.status_code == 307
        assert r.headers["location"] == "/bureau?token=x"
        for name, kind in (("bureau.js", "javascript"), ("bureau.css", "text/css")):
            r = await api.get(f"/bureau/assets/{name}")
            assert r.status_code == 200, name
            assert kind in r.headers["content-type"]
            assert r.headers["cache-control"] == "no-cache"
        assert (await api.get("/bureau/assets/nothing.js")).status_code == 404
        # what the page links to is served by the gateway
        html = (BUREAU_DIR / "index.html").read_text(encoding="utf-8")
        for ref in re.findall(r'(?:href|src)="(/[^"]+)"', html):
            assert (await api.get(ref)).status_code == 200, ref
    gw.people.close()


def test_bureau_assets_are_all_local() -> None:
    """No CDN, no external URL: a bureau network may have no internet."""
    names = {p.name for p in BUREAU_DIR.iterdir()}
    assert names == {
        "index.html",
        "bureau.css",
        "state.js",
        "sites.js",
        "detail.js",
        "refresh.js",
        "bureau.js",
        "views.js",
        "ledger.js",
        "notices.js",
        "incidents.js",
        "checks.js",
        "loop.css",
    }
    for path in BUREAU_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I)
        assert not external, f"{path.name} refers to {external}"


# ==================================================== the closed loop (no broker, fake clock)
SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 19, 10, 0, tzinfo=SHANGHAI).timestamp()
MIN = 60.0
LOOP_PEOPLE = {
    "bureau": Person("ju", "局值班员", Role.BUREAU, frozenset()),
    "duty": Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"})),
}


@dataclass
class LoopRig:
    gw: Gateway
    api: httpx.AsyncClient
    clock: FakeClock
    headers: dict[str, dict[str, str]]

    async def get(self, url: str, who: str = "bureau", **params: str) -> dict[str, Any]:
        r = await self.api.get(url, headers=self.headers[who], params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def totals(self, who: str = "bureau", **params: str) -> dict[str, Any]:
        return dict((await self.get("/api/overview", who, **params))["totals"]["closed_loop"])

    async def rows(self) -> dict[str, dict[str, Any]]:
        body = await self.get("/api/overview")
        return {s["id"]: s["closed_loop"] for s in body["sites"]}


@pytest.fixture
async def loop_rig(tmp_path: Path) -> AsyncIterator[LoopRig]:
    data = two_sites(tmp_path / "data", 1)
    del data["mqtt"]  # no broker: the owners' stores are written directly
    clock = FakeClock(MORNING)
    async with Gateway(parse_config(data), clock=clock, monotonic=clock.monotonic) as gw:
        headers: dict[str, dict[str, str]] = {}
        for caller, person in LOOP_PEOPLE.items():
            gw.people.add(person, None, clock())
            _, secret = gw.people.issue_token(person.login, "t", "test", clock())
            headers[caller] = {"authorization": f"Bearer {secret}"}
        async with overview_api(gw) as api:
            yield LoopRig(gw, api, clock, headers)


def _counting(fn: Callable[..., Any], calls: list[str], name: str) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return fn(*args, **kwargs)

    return counted


async def test_overview_closed_loop(loop_rig: LoopRig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig, gw = loop_rig, loop_rig.gw
    nothing = {
        "open_incidents": 0,
        "incidents_deadline_missed": 0,
        "incidents_report_overdue": 0,
        "hazards_to_rectify": 0,
        "overdue_hazards": 0,
        "overdue_major_hazards": 0,
    }
    assert await rig.totals() == nothing | {
        "daily_checks": {
            "date": "2026-11-19",
            "due": "2026-11-19T15:00:00.000+08:00",
            "phase": "open",
            "submitted": 0,
            "late": 0,
            "missing": 2,
            "missing_after_due": 0,  # not due yet: not missing
        },
        "unreadable": {},
    }
    assert (await rig.rows())["xingfu"] == nothing | {
        "daily_check": {"standing": "missing", "missing_after_due": False, "submitted_at": None},
        "unreadable": {},
    }

    # xingfu: an incident opened now (phone by 10:30, written by 11:00); anning: one closed.
    incident = Incident(new_incident_id(), "xingfu", None, "厨房起火", MORNING, "王值班")
    gw.incidents.open_incident(incident)
    closed = Incident(new_incident_id(), "anning", None, "旧事", MORNING - 90 * MIN, "x")
    gw.incidents.open_incident(replace(closed, closed_at=MORNING - MIN))
    # anning: a general hazard due 10:30, a major one due 12:00, one past due but awaiting
    # the bureau's check (not the institution's delay); xingfu: one without a deadline.
    general = gw.hazards.add(hazard("anning", MORNING, MORNING + 30 * MIN))
    major = gw.hazards.add(hazard("anning", MORNING, MORNING + 120 * MIN, "major"))
    waiting = gw.hazards.add(hazard("anning", MORNING, MORNING + 10 * MIN))
    for step in (HazardStatus.RECTIFYING, HazardStatus.AWAITING_VERIFICATION):
        gw.hazards.transition(waiting.id, step, False, actor="赵院长", now=MORNING)
    gw.hazards.add(hazard("xingfu", MORNING, None))

    # 10:30:00, both deadlines to the second: still in time.
    rig.clock.advance(30 * MIN)
    t = await rig.totals()
    assert (t["open_incidents"], t["incidents_report_overdue"], t["overdue_hazards"]) == (1, 0, 0)
    assert t["hazards_to_rectify"] == 3
    # 10:30:01: the call is owed, the general hazard overdue.
    rig.clock.advance(1)
    t = await rig.totals()
    assert (t["incidents_report_overdue"], t["incidents_deadline_missed"]) == (1, 1)
    assert (t["overdue_hazards"], t["overdue_major_hazards"]) == (1, 0)
    rows = await rig.rows()
    assert (rows["xingfu"]["incidents_report_overdue"], rows["xingfu"]["overdue_hazards"]) == (1, 0)
    assert (rows["anning"]["open_incidents"], rows["anning"]["overdue_hazards"]) == (0, 1)
    # The call made late: nothing owed now, but the deadline was missed.
    gw.incidents.add_phone_report(incident.id, PhoneReport("县民政局", rig.clock(), "王值班"))
    t = await rig.totals()
    assert (t["incidents_report_overdue"], t["incidents_deadline_missed"]) == (0, 1)
    detail = await rig.get("/api/overview/sites/xingfu")
    (shown,) = detail["open_incidents"]
    assert shown["id"] == incident.id
    assert shown["clocks"]["phone"]["state"] == "done_late"
    assert shown["clocks"]["written"]["state"] == "running"
    assert shown == (await rig.get(f"/api/incidents/{incident.id}")) | {"clocks": shown["clocks"]}
    assert detail["overdue_hazards"] == []
    assert detail["site"]["closed_loop"]["incidents_deadline_missed"] == 1
    anning = await rig.get("/api/overview/sites/anning")
    assert (anning["open_incidents"], anning["overdue_hazards"]) == ([], [general.id])

    # xingfu reports at 14:59:59; at 15:00 anning's report is missing, the written report
    # (due 11:00) is owed and the major hazard overdue.
    rig.clock.now = datetime(2026, 11, 19, 14, 59, 59, tzinfo=SHANGHAI).timestamp()
    items = [i.id for i in gw.config.daily_checks.items]
    gw.duty.submit(daily_check("xingfu", date(2026, 11, 19), rig.clock(), items), 1e12)
    t = await rig.totals()
    assert (t["daily_checks"]["phase"], t["daily_checks"]["missing_after_due"]) == ("remind", 0)
    rig.clock.advance(1)
    t = await rig.totals()
    assert t["daily_checks"] | {"due": None} == {
        "date": "2026-11-19", "due": None, "phase": "overdue",
        "submitted": 1, "late": 0, "missing": 1, "missing_after_due": 1,
    }  # fmt: skip
    assert (t["overdue_hazards"], t["overdue_major_hazards"]) == (2, 1)
    assert t["incidents_report_overdue"] == 1
    anning = await rig.get("/api/overview/sites/anning")
    assert anning["overdue_hazards"] == [general.id, major.id]
    rows = await rig.rows()
    assert rows["anning"]["daily_check"] == {
        "standing": "missing", "missing_after_due": True, "submitted_at": None,
    }  # fmt: skip
    assert rows["xingfu"]["daily_check"] == {
        "standing": "submitted", "missing_after_due": False,
        "submitted_at": "2026-11-19T14:59:59.000+08:00",
    }  # fmt: skip

    # Another institution's figures are not its own: xingfu's duty officer sees xingfu's.
    own = await rig.totals("duty")
    assert (own["open_incidents"], own["hazards_to_rectify"], own["overdue_hazards"]) == (1, 1, 0)
    assert own["daily_checks"]["missing_after_due"] == 0
    welfare = await rig.totals(kind="child_welfare")
    assert (welfare["open_incidents"], welfare["overdue_hazards"]) == (0, 2)

    # One read per owner whatever the number of sites (the page polls every 10 s): the
    # hazards twice (open, rectifying), the incidents and the day's reports once.
    calls: list[str] = []
    monkeypatch.setattr(gw.hazards, "hazards", _counting(gw.hazards.hazards, calls, "hazards"))
    monkeypatch.setattr(gw.duty, "checks_of", _counting(gw.duty.checks_of, calls, "checks"))
    monkeypatch.setattr(
        "gateway.overview.gather.incidents_touching",
        _counting(incidents_touching, calls, "incidents"),
    )
    await rig.totals()
    assert sorted(calls) == ["checks", "hazards", "hazards", "incidents"]

    # An owner that cannot be read: its figures are null and say why; the rest still stand.
    gw.hazards.close()
    body = await rig.get("/api/overview")
    t = body["totals"]["closed_loop"]
    assert t["unreadable"] == {"hazards": "hazards.sqlite3 is not open"}
    assert (t["hazards_to_rectify"], t["overdue_hazards"], t["overdue_major_hazards"]) == (
        None, None, None,
    )  # fmt: skip
    assert t["open_incidents"] == 1
    assert body["totals"]["devices"]["unknown"] == 8  # the alarm figures are unaffected
    assert body["sites"][0]["closed_loop"]["overdue_hazards"] is None
    detail = await rig.get("/api/overview/sites/anning")
    assert detail["overdue_hazards"] is None
    assert detail["site"]["closed_loop"]["unreadable"] == t["unreadable"]
