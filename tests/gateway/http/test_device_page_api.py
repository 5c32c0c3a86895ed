"""Reopening gas on site and the commissioning page's API, through the app with an unstarted
broker: readings go into the gateway's router directly, on the gateway's fake clock. The
site allows no remote reopening and names its duty room's LAN (192.168.10.0/24)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.http.commands import may_reopen_from
from gateway.people.model import Person, Role
from rules.model import DeviceRef
from tests.conftest import FakeClock, site_config

LAN = ("192.168.10.20", 40000)
AWAY = ("10.0.0.7", 40000)
OPEN = {"cmd": "open_valve"}


@dataclass
class Rig:
    gw: Gateway
    clock: FakeClock
    api: Callable[[tuple[str, int]], httpx.AsyncClient]
    clients: list[httpx.AsyncClient]

    def send(self, device: str, values: dict[str, Any]) -> None:
        payload = orjson.dumps({"values": values})
        self.gw.router.on_message(f"safety/xingfu/{device}/telemetry", payload)

    async def audit(self, action: str) -> list[Any]:
        return [r for r in await self.gw.audit.query(limit=50) if r.action == action]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    data = site_config(tmp_path / "data", 1)
    del data["mqtt"]
    data["sites"][0]["local_networks"] = ["192.168.10.0/24"]
    clock = FakeClock()
    async with Gateway(parse_config(data), clock=clock, monotonic=clock.monotonic) as gw:
        gw.people.add(Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"})), None, clock())
        _, secret = gw.people.issue_token("wang", "t", "test", clock())
        clients: list[httpx.AsyncClient] = []

        def api(client: tuple[str, int]) -> httpx.AsyncClient:
            c = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_api(gw), client=client),
                base_url="http://gw",
                headers={"authorization": f"Bearer {secret}"},
            )
            clients.append(c)
            return c

        yield Rig(gw, clock, api, clients)
        for c in clients:
            await c.aclose()


async def until(what: Callable[[], Any], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not await what():
            await asyncio.sleep(0.01)


async def test_open_valve_only_from_the_site_and_a_hand_opening_is_recorded(rig: Rig) -> None:
    away, lan = rig.api(AWAY), rig.api(LAN)
    rig.send("valve-kitchen", {"open": 0})
    # From elsewhere: refused, and the refusal is on the trail; nothing was sent.
    r = await away.post("/api/devices/valve-kitchen/commands", json=OPEN)
    assert r.status_code == 403, r.text
    assert "on site" in r.json()["error"]
    assert [a.result for a in await rig.audit("command.open_valve")] == ["refused"]
    # Closing is always allowed from anywhere.
    r = await away.post("/api/devices/valve-kitchen/commands", json={"cmd": "close_valve"})
    assert r.status_code == 202
    # From the site's LAN, while a gas alarm is open: still the interlock (409).
    rig.send("gas-kitchen", {"lel": 40.0})
    rig.clock.advance(1)
    rig.send("gas-kitchen", {"lel": 40.0})
    assert list(rig.gw.book.open_alarms())
    r = await lan.post("/api/devices/valve-kitchen/commands", json=OPEN)
    assert r.status_code == 409, r.text
    # The valve reported open while the gas alarm is open: the rules fight it, not recorded.
    rig.send("valve-kitchen", {"open": 1})
    assert rig.gw.trends.openings_of(DeviceRef("xingfu", "valve-kitchen")) == []
    rig.send("valve-kitchen", {"open": 0})
    # The alarm is over and closed: from the LAN the valve may be reopened, and the valve's
    # answer to that command is not taken for a hand opening.
    for _ in range(3):  # low for longer than the off-delay (30 s), reported every 20 s
        rig.send("gas-kitchen", {"lel": 0.0})
        rig.clock.advance(20)
    for alarm in list(rig.gw.book.open_alarms()):
        await rig.gw.actions.close(alarm.id, "王值班", alarm_disposition(), None)
    assert not list(rig.gw.book.open_alarms())
    r = await lan.post("/api/devices/valve-kitchen/commands", json=OPEN)
    assert r.status_code == 202, r.text
    rig.send("valve-kitchen", {"open": 1})
    body = (await away.get("/api/devices/valve-kitchen")).json()
    assert body["opened_on_site"] == []
    # Closed again, then opened by hand much later: recorded, on the device and the trail.
    rig.send("valve-kitchen", {"open": 0})
    rig.clock.advance(3600)
    rig.send("valve-kitchen", {"open": 1})
    body = (await away.get("/api/devices/valve-kitchen")).json()
    assert len(body["opened_on_site"]) == 1
    await until(lambda: rig.audit("valve.opened_on_site"))
    (row,) = await rig.audit("valve.opened_on_site")
    assert (row.site, row.target, row.actor) == ("xingfu", "valve-kitchen", "system")
    # Read back from the trail (it outlives a restart), not twice.
    body = (await away.get("/api/devices/valve-kitchen")).json()
    assert len(body["opened_on_site"]) == 1
    rig.gw.trends.hand_openings.clear()  # as after a restart
    body = (await away.get("/api/devices/valve-kitchen")).json()
    assert len(body["opened_on_site"]) == 1
    assert not list(rig.gw.book.open_alarms())  # not fought: no alarm, nothing to close


def alarm_disposition() -> Any:
    from gateway.alarms.book import Disposition  # noqa: PLC0415

    return Disposition.REAL


def test_remote_reopen_and_networks_decide() -> None:
    site = parse_config(site_config(Path("/tmp/x"), 1)).sites[0]
    assert not may_reopen_from(site, "127.0.0.1")  # loopback is not the site unless listed
    assert not may_reopen_from(site, "")
    lan = site.model_copy(update={"local_networks": parse_nets("192.168.10.0/24", "fd00::/8")})
    assert may_reopen_from(lan, "192.168.10.99") and may_reopen_from(lan, "fd00::5")
    assert not may_reopen_from(lan, "192.168.11.1")
    assert may_reopen_from(site.model_copy(update={"remote_reopen": True}), "10.9.9.9")


def parse_nets(*cidrs: str) -> list[Any]:
    import ipaddress  # noqa: PLC0415

    return [ipaddress.ip_network(c) for c in cidrs]


async def test_device_page_values_raw_thresholds_and_trend(rig: Rig) -> None:
    api = rig.api(AWAY)
    t0 = rig.clock()
    for minute, lel in enumerate([3.0, 5.0, 30.0, 32.0, 2.0]):
        rig.clock.advance(60)
        rig.send("gas-kitchen", {"lel": lel})
        if minute == 2:  # the same bucket again: the last value counts, low/high kept
            rig.clock.advance(1)
            rig.send("gas-kitchen", {"lel": 31.0})
    body = (await api.get("/api/devices/gas-kitchen")).json()
    assert body["values"]["lel"] == 2.0
    assert body["raw"]["channel"] == "telemetry"
    assert body["transport"] == "mqtt" and body["registers"] is None
    assert orjson.loads(body["raw"]["text"]) == {"values": {"lel": 2.0}}
    (gas,) = [t for t in body["thresholds"] if t["alarm"] == "gas_leak"]
    assert gas["quantity"] == "lel" and [lv["at"] for lv in gas["levels"]] == [10.0, 20.0, 50.0]
    trend = (await api.get("/api/devices/gas-kitchen/trend?hours=24")).json()
    lel = trend["series"]["lel"]
    assert [p[3] for p in lel] == [3.0, 5.0, 31.0, 32.0, 2.0]
    assert lel[2][1:] == [30.0, 31.0, 31.0]  # low, high, last of the bucket
    assert all(t0 < p[0] + 30 and p[0] <= rig.clock() for p in lel)
    (period,) = [a for a in trend["alarms"] if a["type"] == "gas_leak"]
    assert t0 + 120 <= period["from"] <= t0 + 185 and period["from"] < period["to"]
    assert trend["thresholds"] == body["thresholds"]
    # One hour asked: the same points (all within it); more than 24 h is refused.
    assert (await api.get("/api/devices/gas-kitchen/trend?hours=1")).json()["series"]["lel"] == lel
    assert (await api.get("/api/devices/gas-kitchen/trend?hours=25")).status_code == 422
