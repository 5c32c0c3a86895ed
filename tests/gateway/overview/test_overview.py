"""The bureau overview: its pure figures (online rate, status, order), `GET /api/overview`
and the drill-down against a real gateway and broker, auth, and the Grafana dashboard file."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gateway.alarms.book import Action, Alarm, AlarmState
from gateway.app.supervisor import Gateway
from gateway.config.schema import SiteConfig, SiteKind, parse_config
from gateway.http.app import create_api
from gateway.http.overview import register_overview_routes
from gateway.http.static import BUREAU_DIR
from gateway.overview.queries import (
    KIND_LABELS,
    WINDOW_S,
    DeviceSnapshot,
    SiteRow,
    SiteStatus,
    SortKey,
    StatusReason,
    site_status,
    sort_sites,
    summarize_site,
)
from gateway.status.availability import (
    Availability,
    availability,
    clipped_total,
    merge_intervals,
)
from gateway.status.availability import alarm_intervals as alarm_offline_intervals
from rules.model import AlarmType, DeviceRef, Severity
from tests.conftest import (
    REPO_ROOT,
    Mosquitto,
    Probe,
    answer_valve,
    running_gateway,
    until,
)
from tests.support.overview import seed_history, two_sites

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "safety-gateway.json"
H = 3600.0


# ====================================================================== pure: intervals
def test_merge_intervals_unsorted_overlapping_touching_and_empty() -> None:
    got = merge_intervals([(5, 8), (1, 3), (2, 4), (8, 9), (10, 10), (12, 11), (3.5, 3.6)])
    assert got == [(1, 4), (5, 9)]
    assert merge_intervals([]) == []


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        ([(50, 120)], 20),  # crosses the window's start
        ([(190, 250)], 10),  # crosses its end
        ([(50, 250)], 100),  # covers the whole window
        ([(0, 50), (300, 400)], 0),  # wholly outside
        ([(120, 150), (140, 160), (110, 130)], 50),  # overlapping, unsorted: 110..160
        ([(90, 110), (190, 210), (150, 151)], 21),  # both edges and one inside
    ],
)
def test_clipped_total(intervals: list[tuple[float, float]], expected: float) -> None:
    assert clipped_total(intervals, 100, 200) == pytest.approx(expected)


def _events(*pairs: tuple[float, Action]) -> list[tuple[float, str]]:
    return [(at, action.value) for at, action in pairs]


def test_offline_intervals_from_the_timeline() -> None:
    now = 1000.0
    # still active, nothing but the raise: offline until now
    assert alarm_offline_intervals(
        100, "active", None, None, _events((100, Action.RAISED)), now
    ) == [(100, now)]
    # cleared, returned (the row's cleared_at was reset), cleared again: two intervals, not
    # one from the first raise to the last clear
    flapped = _events(
        (100, Action.RAISED),
        (150, Action.ACKED),
        (200, Action.CLEARED),
        (500, Action.RETURNED),
        (600, Action.CLEARED),
    )
    assert alarm_offline_intervals(100, "cleared", 600, None, flapped, now) == [
        (100, 200),
        (500, 600),
    ]
    # returned and still active: runs to now; entries given out of order are sorted
    back = _events((500, Action.RETURNED), (100, Action.RAISED), (200, Action.CLEARED))
    assert alarm_offline_intervals(100, "active", None, None, back, now) == [
        (100, 200),
        (500, now),
    ]
    # closed: ends at its last clear; the close adds nothing
    closed = [*flapped, (700.0, Action.CLOSED.value)]
    assert alarm_offline_intervals(100, "closed", 600, 700, closed, now) == [(100, 200), (500, 600)]


def test_offline_intervals_without_or_with_partial_timeline() -> None:
    now = 1000.0
    assert alarm_offline_intervals(100, "active", None, None, [], now) == [(100, now)]
    assert alarm_offline_intervals(100, "cleared", 300, None, [], now) == [(100, 300)]
    assert alarm_offline_intervals(100, "closed", None, 400, [], now) == [(100, 400)]
    # a mirrored alarm first seen at its clear: active from its raise until then
    assert alarm_offline_intervals(
        100, "cleared", 250, None, _events((250, Action.CLEARED)), now
    ) == [(100, 250)]


def test_availability_known_devices_only_clipped_to_the_window() -> None:
    now = 10 * H
    start = now - 4 * H  # a 4 h window to keep the numbers readable
    offline = {
        # crosses the window's start (1 h inside) and overlaps itself: 1 h + 0.5 h
        "a": [
            (start - 2 * H, start + 1 * H),
            (start + 0.5 * H, start + 0.75 * H),
            (start + 2 * H, start + 2.5 * H),
        ],
        "b": [(now - 0.25 * H, now)],  # open: to now
        "ghost": [(start, now)],  # unknown now: left out, with its device-time
    }
    got = availability(["a", "b", "c"], offline, start, now)
    assert got.device_s == pytest.approx(3 * 4 * H)
    assert got.offline_s == pytest.approx(1.5 * H + 0.25 * H)
    assert got.rate == round((12 - 1.75) / 12, 4) == 0.8542
    assert availability([], offline, start, now).rate is None
    assert availability(["c"], offline, start, now).rate == 1.0
    assert availability(["ghost"], offline, start, now).rate == 0.0
    # figures add up over sites: device-time weighted, not a mean of the rates
    both = Availability(4 * H, 0) + Availability(12 * H, 4 * H)
    assert both.rate == 0.75


# ========================================================================= pure: status
@pytest.mark.parametrize(
    ("alarms", "devices", "status", "reason"),
    [
        ({"critical": 1, "minor": 3}, {"offline": 2}, "alarm", "critical_open"),
        ({"major": 1}, {}, "alarm", "major_open"),
        ({"minor": 1}, {"offline": 1}, "warning", "minor_open"),
        ({"warning": 2}, {}, "warning", "warning_open"),
        ({}, {"offline": 1, "online": 4}, "warning", "devices_offline"),
        ({}, {"fault": 1}, "warning", "devices_fault"),
        ({}, {"online": 3, "unknown": 2}, "ok", "nothing_open"),
        ({"critical": 0, "major": 0}, {}, "ok", "nothing_open"),
    ],
)
def test_site_status(
    alarms: dict[str, int], devices: dict[str, int], status: str, reason: str
) -> None:
    assert site_status(alarms, devices) == (SiteStatus(status), StatusReason(reason))


def _alarm(
    id: str,
    severity: Severity,
    raised_at: float,
    *,
    acked: bool = False,
    state: AlarmState = AlarmState.ACTIVE,
    device: str = "d1",
    type: AlarmType = AlarmType.GAS_LEAK,
) -> Alarm:
    return Alarm(id, "s1", device, type, severity, state, raised_at, acked=acked)


def test_summarize_site() -> None:
    site = SiteConfig(id="s1", name="甲", kind=SiteKind.RELIEF_STATION, served_by="edge")
    devices = [
        DeviceSnapshot("d1", "online", 500.0, "厨房"),
        DeviceSnapshot("d2", "offline", 300.0, "大厅"),
        DeviceSnapshot("d3", "unknown", None),
        DeviceSnapshot("d4", "fault", 700.0),
        DeviceSnapshot("d5", "online", 650.0),
    ]
    alarms = [
        _alarm("new-unacked", Severity.MAJOR, 400.0, device="d4"),
        _alarm("oldest-but-acked", Severity.CRITICAL, 100.0, acked=True),
        _alarm("oldest-unacked", Severity.MINOR, 200.0, device="d2"),
        _alarm("closed", Severity.CRITICAL, 50.0, state=AlarmState.CLOSED),
        _alarm("cleared", Severity.WARNING, 300.0, acked=True, state=AlarmState.CLEARED),
    ]
    row = summarize_site(site, devices, alarms, Availability(86400, 864))
    assert row.devices == {"online": 2, "offline": 1, "fault": 1, "unknown": 1}
    assert row.open_alarms == {"critical": 1, "major": 1, "minor": 1, "warning": 1}
    assert row.unacknowledged == 2
    assert row.oldest_unacknowledged is not None
    assert row.oldest_unacknowledged.id == "oldest-unacked"
    assert row.locations["d2"] == "大厅"
    assert row.last_contact == 700.0
    assert row.online_rate == 0.99
    assert (row.status, row.status_reason) == (SiteStatus.ALARM, StatusReason.CRITICAL_OPEN)
    assert (row.kind, row.served_by) == (SiteKind.RELIEF_STATION, "edge")

    quiet = summarize_site(site, [DeviceSnapshot("d3", "unknown", None)], [], Availability())
    assert quiet.last_contact is None
    assert quiet.oldest_unacknowledged is None
    assert quiet.online_rate is None
    assert quiet.status is SiteStatus.OK


# ======================================================================== pure: sorting
def _row(
    id: str,
    name: str,
    *,
    kind: SiteKind = SiteKind.ELDERLY_CARE,
    alarms: dict[str, int] | None = None,
    devices: dict[str, int] | None = None,
    unacked: int = 0,
    rate: float | None = 1.0,
    contact: float | None = 1000.0,
) -> SiteRow:
    open_alarms = {"critical": 0, "major": 0, "minor": 0, "warning": 0} | (alarms or {})
    by_status = {"online": 1, "offline": 0, "fault": 0, "unknown": 0} | (devices or {})
    status, reason = site_status(open_alarms, by_status)
    avail = Availability() if rate is None else Availability(1000.0, 1000.0 * (1 - rate))
    return SiteRow(
        id,
        name,
        kind,
        "self",
        by_status,
        open_alarms,
        unacked,
        None,
        contact,
        avail,
        status,
        reason,
    )


def _ids(rows: list[SiteRow]) -> list[str]:
    return [r.id for r in rows]


def test_sort_by_severity_critical_first() -> None:
    rows = [
        _row("ok", "甲"),
        _row("majors", "乙", alarms={"major": 5}),
        _row("offline", "丙", devices={"offline": 1}),
        _row("one-critical", "丁", alarms={"critical": 1}),
        _row("two-critical", "戊", alarms={"critical": 2}),
        _row("minor", "己", alarms={"minor": 1}),
        _row("minor-unacked", "庚", alarms={"minor": 1}, unacked=1),
        _row("ok-b", "甲", rate=0.5),  # same name as "ok": id decides
    ]
    assert _ids(sort_sites(rows, SortKey.SEVERITY)) == [
        "two-critical",
        "one-critical",
        "majors",
        "minor-unacked",
        "minor",
        "offline",
        "ok",
        "ok-b",
    ]
    assert _ids(sort_sites(rows, SortKey.SEVERITY, reverse=True))[0] == "ok-b"


def test_sort_by_name_kind_rate_and_contact() -> None:
    rows = [
        _row("b", "B园", kind=SiteKind.FUNERAL, rate=0.9, contact=300.0),
        _row("a", "A园", kind=SiteKind.CHILD_WELFARE, rate=None, contact=None),
        _row("c", "C园", kind=SiteKind.ELDERLY_CARE, rate=0.5, contact=100.0),
        _row("d", "D园", kind=SiteKind.CHILD_WELFARE, rate=0.99, contact=200.0),
    ]
    assert _ids(sort_sites(rows, SortKey.NAME)) == ["a", "b", "c", "d"]
    assert _ids(sort_sites(rows, SortKey.NAME, reverse=True)) == ["d", "c", "b", "a"]
    # kinds in the configuration's order: elderly care, child welfare, ..., funeral
    assert _ids(sort_sites(rows, SortKey.KIND)) == ["c", "a", "d", "b"]
    # lowest rate first; a site with no known device last, in either direction
    assert _ids(sort_sites(rows, SortKey.ONLINE_RATE)) == ["c", "b", "d", "a"]
    assert _ids(sort_sites(rows, SortKey.ONLINE_RATE, reverse=True)) == ["d", "b", "c", "a"]
    # longest silence first; never heard from before all
    assert _ids(sort_sites(rows, SortKey.LAST_CONTACT)) == ["a", "c", "d", "b"]
    assert _ids(sort_sites(rows, SortKey.LAST_CONTACT, reverse=True)) == ["b", "d", "c", "a"]


def test_every_kind_has_a_label() -> None:
    assert set(KIND_LABELS) == set(SiteKind)
    assert KIND_LABELS[SiteKind.MARRIAGE_REGISTRY] == "婚姻登记处"


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


def test_bureau_assets_are_all_local() -> None:
    """No CDN, no external URL: a bureau network may have no internet."""
    names = {p.name for p in BUREAU_DIR.iterdir()}
    assert names == {"index.html", "bureau.js", "bureau.css"}
    for path in BUREAU_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I)
        assert not external, f"{path.name} refers to {external}"


# ================================================================ the Grafana dashboard
def test_grafana_dashboard_loads_and_is_complete() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert 36 <= dash["schemaVersion"] <= 41
    assert dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_INFLUXDB"]["type"] == "datasource"
    assert variables["DS_INFLUXDB"]["query"] == "influxdb"
    for name in ("site", "device"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${DS_INFLUXDB}"
        assert variables[name]["multi"] and variables[name]["includeAll"]
    assert "${site" in json.dumps(variables["device"]["query"]), "device depends on site"

    panels = [p for p in dash["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    queries: dict[str, str] = {}
    for p in panels:
        assert p["datasource"]["uid"] == "${DS_INFLUXDB}", p["title"]
        grid = p["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_INFLUXDB}"
            q = t["query"]
            assert q.count("(") == q.count(")") and q.count("[") == q.count("]"), p["title"]
            queries[p["title"]] = queries.get(p["title"], "") + q
    joined = "\n".join(queries.values())
    for field in ('"lel"', '"co_ppm"', '"residual_ma"', "temp_c", '"state"', '"online"'):
        assert field in joined, field
    for measurement in ("reading", "alarm", "device_status"):
        assert f'r._measurement == "{measurement}"' in joined, measurement
    # every time series honours the site and device choice
    for title, q in queries.items():
        assert "${site:json}" in q, title
    kinds = {p["type"] for p in panels}
    assert {"timeseries", "table"} <= kinds
    assert (DASHBOARD.parent / "README.md").is_file()
