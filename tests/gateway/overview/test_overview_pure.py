"""The bureau overview's pure figures (intervals, online rate, status, order) and the
Grafana dashboard file. The HTTP API is in tests/gateway/http/test_overview_api.py."""

from __future__ import annotations

import json

import pytest

from gateway.alarms.book import Action, Alarm, AlarmState
from gateway.config.schema import SiteConfig, SiteKind
from gateway.overview.queries import (
    KIND_LABELS,
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
from rules.model import AlarmType, Severity
from tests.conftest import (
    REPO_ROOT,
)

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
    site = SiteConfig(
        id="s1", name="甲", kind=SiteKind.RELIEF_STATION, served_by="edge", edge_gateway="gw-s1"
    )
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
