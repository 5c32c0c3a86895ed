"""Hazards suggested from the gateway's own alarms (issue 12): each rule at its boundary
(offline 23:59 vs 24:01, two vs three false alarms, outside the window), one suggestion per
device and source, none once a hazard links the alarm; then the API by role and with another
site. The gateway is built but not started (no broker): open alarms are loaded into the book,
closed ones written through the store's writer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.alarms.book import Action, Alarm, AlarmState, AlarmWrite, Disposition
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.alarms.store import AlarmStore
from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.config.schema import HazardsSection
from gateway.hazards.model import Hazard, HazardLevel, HazardSource
from gateway.hazards.suggest import Suggestion, suggestions
from gateway.http.app import create_api
from gateway.people.model import Person, Role
from rules.model import AlarmType, Severity
from tests.conftest import free_port
from tests.support.overview import two_sites

T0 = 1_795_000_000.0  # 2026-11-18 19:06:40 in Shanghai
H = 3600.0
DAY = 86400.0
SETTINGS = HazardsSection()
_ids = iter(range(1, 10_000))


def alarm(
    type_: AlarmType,
    *,
    at: float,
    device: str = "gas1",
    site: str = "xingfu",
    state: AlarmState = AlarmState.ACTIVE,
    disposition: Disposition | None = None,
    alarm_id: str | None = None,
) -> Alarm:
    closed = state is AlarmState.CLOSED
    return Alarm(
        alarm_id or f"A{next(_ids)}", site, device, type_, Severity.MAJOR, state, at,
        closed_at=at + 60 if closed else None, disposition=disposition,
    )  # fmt: skip


def closed(type_: AlarmType, disposition: Disposition, *, at: float, **kw: Any) -> Alarm:
    return alarm(type_, at=at, state=AlarmState.CLOSED, disposition=disposition, **kw)


def hazard_linking(alarm_id: str, source: HazardSource) -> Hazard:
    return Hazard(
        1, "xingfu", "厨房", "x", HazardLevel.GENERAL, source, T0, "王值班", "李四应", "修",
        None, alarm_id=alarm_id,
    )  # fmt: skip


def suggest(
    opened: list[Alarm] = [],  # noqa: B006 - never mutated
    done: list[Alarm] = [],  # noqa: B006
    hazards: list[Hazard] = [],  # noqa: B006
    now: float = T0,
) -> list[Suggestion]:
    return suggestions(opened, done, hazards, now, SETTINGS, {("xingfu", "gas1"): "厨房"})


def kinds(found: list[Suggestion]) -> list[tuple[str, HazardSource, str]]:
    return [(s.device, s.source, s.alarm_id) for s in found]


# ------------------------------------------------------------------------------- rules
def test_a_valve_failure_open_or_recent_is_a_major_suggestion() -> None:
    (s,) = suggest([alarm(AlarmType.VALVE_FAILURE, at=T0 - H, alarm_id="V1")])
    assert (s.site, s.device, s.location, s.source, s.alarm_id) == (
        "xingfu", "gas1", "厨房", HazardSource.VALVE_FAILURE, "V1",
    )  # fmt: skip
    assert s.level is HazardLevel.MAJOR and "切断阀" in s.reason
    recent = closed(AlarmType.VALVE_FAILURE, Disposition.REAL, at=T0 - 29 * DAY)
    assert kinds(suggest([], [recent])) == [("gas1", HazardSource.VALVE_FAILURE, recent.id)]
    # Outside the window, or a test of the valve, is no failure in service.
    assert suggest([], [closed(AlarmType.VALVE_FAILURE, Disposition.REAL, at=T0 - 31 * DAY)]) == []
    assert suggest([], [closed(AlarmType.VALVE_FAILURE, Disposition.TEST, at=T0 - H)]) == []


@pytest.mark.parametrize(
    ("offline_for", "suggested"),
    [(24 * H - 60, False), (24 * H, False), (24 * H + 60, True)],
)
def test_a_device_offline_for_more_than_offline_after(offline_for: float, suggested: bool) -> None:
    found = suggest([alarm(AlarmType.DEVICE_OFFLINE, at=T0 - offline_for)])
    assert [s.source for s in found] == ([HazardSource.DEVICE_OFFLINE] if suggested else [])
    if suggested:
        assert found[0].level is HazardLevel.GENERAL and "24 小时" in found[0].reason


def test_an_offline_device_that_came_back_is_not_suggested() -> None:
    back = alarm(AlarmType.DEVICE_OFFLINE, at=T0 - 3 * DAY, state=AlarmState.CLEARED)
    assert suggest([back]) == []


def test_offline_after_is_configurable() -> None:
    two_hours = HazardsSection.model_validate({"offline_after": "2 h"})
    found = suggestions([alarm(AlarmType.DEVICE_OFFLINE, at=T0 - 3 * H)], [], [], T0, two_hours)
    assert [(s.source, s.location) for s in found] == [(HazardSource.DEVICE_OFFLINE, None)]
    for bad in ({"offline_after": "10 min"}, {"false_alarms": 1}, {"false_alarm_window": "2 h"},
                {"offline_after": "24 h", "extra": 1}):  # fmt: skip
        with pytest.raises(ValueError):
            HazardsSection.model_validate(bad)


def test_three_false_alarms_within_the_window() -> None:
    def false(days_ago: float) -> Alarm:
        return closed(AlarmType.GAS_LEAK, Disposition.FALSE_ALARM, at=T0 - days_ago * DAY)

    two = [false(1), false(10)]
    assert suggest([], two) == []
    old = false(31)  # outside the 30 days
    assert suggest([], [*two, old]) == []
    third = false(29)
    (s,) = suggest([], [*two, third, old])
    # From the latest of them, one per device however many.
    assert (s.source, s.alarm_id, s.level) == (HazardSource.FALSE_ALARMS, two[0].id, "general")
    assert s.reason.startswith("30 天内 3 次")
    # Real, test and maintenance closes are not false alarms.
    others = [closed(AlarmType.GAS_LEAK, d, at=T0 - DAY) for d in (Disposition.REAL,
              Disposition.TEST, Disposition.MAINTENANCE)]  # fmt: skip
    assert suggest([], [*two, *others]) == []


def test_an_electrical_alarm_closed_as_real() -> None:
    found = suggest(
        [],
        [
            closed(AlarmType.RESIDUAL_CURRENT, Disposition.REAL, at=T0 - DAY, device="e1"),
            closed(AlarmType.OVERTEMPERATURE, Disposition.REAL, at=T0 - 2 * DAY, device="e2"),
            closed(AlarmType.OVERCURRENT, Disposition.REAL, at=T0 - 3 * DAY, device="e3"),
            closed(AlarmType.OVERCURRENT, Disposition.TEST, at=T0 - DAY, device="e4"),
            closed(AlarmType.GAS_LEAK, Disposition.REAL, at=T0 - DAY, device="g1"),  # no rule
        ],
    )
    assert [(s.device, s.source) for s in found] == [
        ("e1", HazardSource.ELECTRICAL_ALARM),
        ("e2", HazardSource.ELECTRICAL_ALARM),
        ("e3", HazardSource.ELECTRICAL_ALARM),
    ]
    assert "剩余电流" in found[0].reason


def test_one_per_device_and_source_from_the_latest_alarm() -> None:
    old = closed(AlarmType.VALVE_FAILURE, Disposition.REAL, at=T0 - 5 * DAY)
    new = alarm(AlarmType.VALVE_FAILURE, at=T0 - H)
    elec = closed(AlarmType.OVERCURRENT, Disposition.REAL, at=T0 - 2 * DAY)
    other = alarm(AlarmType.VALVE_FAILURE, at=T0 - 2 * H, device="gas2")
    assert kinds(suggest([new, other], [old, elec])) == [
        ("gas1", HazardSource.VALVE_FAILURE, new.id),
        ("gas2", HazardSource.VALVE_FAILURE, other.id),
        ("gas1", HazardSource.ELECTRICAL_ALARM, elec.id),
    ]


def test_a_linked_alarm_covers_itself_and_earlier_ones_until_a_later_alarm() -> None:
    old = closed(AlarmType.VALVE_FAILURE, Disposition.REAL, at=T0 - 5 * DAY)
    new = closed(AlarmType.VALVE_FAILURE, Disposition.REAL, at=T0 - 2 * DAY)
    linked = [hazard_linking(new.id, HazardSource.VALVE_FAILURE)]
    assert suggest([], [old, new], linked) == []
    again = alarm(AlarmType.VALVE_FAILURE, at=T0 - H)
    assert kinds(suggest([again], [old, new], linked)) == [
        ("gas1", HazardSource.VALVE_FAILURE, again.id)
    ]
    # Repeated false alarms: the hazard takes the three it was entered for.
    falses = [
        closed(AlarmType.SMOKE, Disposition.FALSE_ALARM, at=T0 - d * DAY) for d in (1, 2, 3, 4)
    ]
    assert len(suggest([], falses)) == 1
    assert suggest([], falses, [hazard_linking(falses[0].id, HazardSource.FALSE_ALARMS)]) == []


# --------------------------------------------------------------------------------- API
PERSONS = {
    "duty": Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"})),
    "anning": Person("zhao", "赵院长", Role.LEGAL_REPRESENTATIVE, frozenset({"anning"})),
    "bureau": Person("ju", "局值班员", Role.BUREAU, frozenset()),
    "bureau_anning": Person("juan", "局安宁", Role.BUREAU, frozenset({"anning"})),
    "admin": Person("root1", "管理员", Role.ADMIN, frozenset()),
}


@dataclass
class Api:
    client: httpx.AsyncClient
    gw: Gateway
    headers: dict[str, dict[str, str]]

    async def get(self, who: str, url: str = "/api/hazards/suggestions") -> httpx.Response:
        return await self.client.get(url, headers=self.headers[who])

    async def seen(self, who: str, url: str = "/api/hazards/suggestions") -> list[tuple[str, ...]]:
        r = await self.get(who, url)
        assert r.status_code == 200, r.text
        return [(s["site"], s["device"], s["source"]) for s in r.json()["suggestions"]]


async def write_closed(path: Path, alarms: list[Alarm]) -> None:
    """Closed alarms written beside the gateway's store (WAL: its reader sees them), by a
    store of their own, so no fan-out of the unstarted gateway hears of them."""
    store = AlarmStore(path)
    await store.open()
    writer = asyncio.create_task(store.run_writer(), name="test-store-writer")
    try:
        for a in alarms:
            write = AlarmWrite(alarm=a, entries=(), first_seq=0, action=Action.CLOSED)
            store.submit_alarm(write, AlarmEvent(write.action, AlarmSnapshot.of(a)))
        assert await store.flush(5)
    finally:
        store.stop()
        await writer
        await store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    data = two_sites(tmp_path / "data", free_port())
    data["http"] = {"host": "127.0.0.1", "port": 8080, "accounts": True}
    gw = Gateway(parse_config(data), clock=lambda: T0)
    await gw.audit.open()
    gw.people.open()
    gw.hazards.open()
    await gw.store.open()
    headers: dict[str, dict[str, str]] = {"anon": {}}
    for key, person in PERSONS.items():
        gw.people.add(person, None, T0)
        _, secret = gw.people.issue_token(person.login, "test", "test", T0)
        headers[key] = {"authorization": f"Bearer {secret}"}
    transport = httpx.ASGITransport(app=create_api(gw))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Api(client, gw, headers)
    finally:
        await gw.store.close()
        gw.hazards.close()
        gw.people.close()
        await gw.audit.close()


async def test_suggestions_by_role_and_accepted_by_entering_the_hazard(api: Api) -> None:
    gw = api.gw
    devices = sorted((r.site, r.device) for r in gw.inventory.devices)
    xingfu = next(d for s, d in devices if s == "xingfu")
    anning = next(d for s, d in devices if s == "anning")
    valve = alarm(AlarmType.VALVE_FAILURE, at=T0 - H, device=xingfu, alarm_id="V1")
    gw.book.load([valve, alarm(AlarmType.DEVICE_OFFLINE, at=T0 - 2 * DAY, site="anning",
                               device=anning)])  # fmt: skip
    falses = [closed(AlarmType.GAS_LEAK, Disposition.FALSE_ALARM, at=T0 - d * DAY,
                     device=xingfu) for d in (1, 2, 3)]  # fmt: skip
    await write_closed(Path(gw.config.gateway.data_dir) / "alarms.sqlite3", falses)

    own = [("xingfu", xingfu, "valve_failure"), ("xingfu", xingfu, "false_alarms")]
    foreign = [("anning", anning, "device_offline")]
    assert await api.seen("duty") == own
    assert sorted(await api.seen("bureau")) == sorted(own + foreign)
    assert sorted(await api.seen("admin")) == sorted(own + foreign)
    assert await api.seen("bureau_anning") == foreign
    assert await api.seen("bureau", "/api/hazards/suggestions?site=anning") == foreign
    # Another site is unknown to an institution, as one that does not exist.
    for who, site in (("duty", "anning"), ("bureau_anning", "xingfu"), ("admin", "nowhere")):
        r = await api.get(who, f"/api/hazards/suggestions?site={site}")
        assert (r.status_code, r.json()) == (404, {"error": "unknown site", "detail": site})
    assert (await api.get("anon")).status_code == 401

    s = (await api.get("duty")).json()["suggestions"][0]
    assert (s["alarm_id"], s["level"], s["level_label"], s["raised_at"]) == (
        "V1", "major", "重大", "2026-11-18T18:06:40.000+08:00",
    )  # fmt: skip
    # Accepting is entering the hazard with its source and alarm: the link is kept, and the
    # suggestion is gone.
    body = {
        "site": "xingfu", "location": s["location"] or "厨房", "description": s["description"],
        "level": s["level"], "source": s["source"], "alarm_id": s["alarm_id"],
        "responsible": "李四应", "measure": "更换切断阀",
    }  # fmt: skip
    r = await api.client.post("/api/hazards", json=body, headers=api.headers["duty"])
    assert r.status_code == 201, r.text
    assert (r.json()["source"], r.json()["alarm_id"]) == ("valve_failure", "V1")
    assert await api.seen("duty") == [("xingfu", xingfu, "false_alarms")]
