"""Configuration reload inside a running gateway (real Mosquitto, a simulated Modbus bus):
what a removed gas detector leaves behind, and Modbus buses started and stopped."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.modbus.profile import builtin_profiles
from gateway.app.reload import reload_config
from gateway.config.loading import parse_config
from gateway.overview.gather import OverviewSources, site_rows
from rules.model import DeviceRef
from simulator.modbus_server import SimModbusDevice, SimModbusServer
from tests.conftest import Mosquitto, Probe, running_gateway, site_config, until, write_config

OPEN_VALVE = {"by": "王值班", "cmd": "open_valve"}


async def test_a_removed_detector_s_gas_alarm_keeps_the_valve_shut_until_a_person_closes_it(
    tmp_path: Path, broker: Mosquitto, probe: Probe
) -> None:
    rules = {"defaults": {"electrical_fire_monitor": {"residual_current": {"on_delay": "0 s"}}}}
    data = site_config(tmp_path / "data", broker.port, rules=rules)
    data["sites"][0]["local_networks"] = ["127.0.0.0/8"]  # open_valve: the test is on site
    async with running_gateway(parse_config(data)) as rg:
        await probe.telemetry("gas-kitchen", {"lel": 30.0})
        cmd = await probe.wait_for("valve-kitchen/cmd")
        await probe.publish("safety/xingfu/valve-kitchen/cmd/ack", {"id": cmd["id"], "ok": True})
        gas = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "gas_leak")

        old = rg.gw.config
        new = copy.deepcopy(data)
        new["sites"][0]["devices"] = [
            d for d in new["sites"][0]["devices"] if d["id"] != "gas-kitchen"
        ]
        result = await reload_config(rg.gw, write_config(tmp_path / "gateway.yaml", new))
        assert result.ok and result.changes["devices_removed"] == ["xingfu/gas-kitchen"]
        assert not rg.gw.engine.knows(DeviceRef("xingfu", "gas-kitchen"))

        # An overview that read the site list before the reload skips the removed device.
        gw = rg.gw
        sources = OverviewSources(gw.store, gw.book, gw.engine, gw.central.edges)
        rows = await site_rows(sources, old.sites, time.time())
        assert sum(rows[0].devices.values()) == len(old.sites[0].devices) - 1

        # The alarm stays open, and still keeps the valve shut.
        assert (await rg.api.get(f"/api/alarms/{gas['id']}")).json()["state"] == "active"
        r = await rg.api.post("/api/devices/valve-kitchen/commands", json=OPEN_VALVE)
        assert r.status_code == 409, r.text
        # Nothing will clear it any more: a person may close it while active.
        close = {"by": "王值班", "disposition": "real", "note": "探测器已拆除"}
        r = await rg.api.post(f"/api/alarms/{gas['id']}/close", json=close)
        assert r.status_code == 200, r.text
        closed = (await rg.api.get(f"/api/alarms/{gas['id']}")).json()
        assert closed["timeline"][-1]["detail"]["unwatched"] is True
        r = await rg.api.post("/api/devices/valve-kitchen/commands", json=OPEN_VALVE)
        assert r.status_code == 202, r.text
        # An alarm of a device still configured cannot be closed while active, as ever.
        await probe.telemetry("efm-1", {"residual_ma": 900.0})
        efm = await probe.wait_for("xingfu/alarms", lambda m: m["device"] == "efm-1")
        r = await rg.api.post(f"/api/alarms/{efm['id']}/close", json=close)
        assert r.status_code == 409, r.text


def efm_device(port: int) -> dict[str, Any]:
    return {
        "id": "efm-m",
        "type": "electrical_fire_monitor",
        "location": "配电室",
        "transport": "modbus",
        "poll_interval_s": 0.2,
        "modbus": {"host": "127.0.0.1", "port": port, "unit": 1, "profile": "acrel_arcm300t_z"},
    }


async def test_reload_starts_and_stops_modbus_buses(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    sim = SimModbusDevice(builtin_profiles()["acrel_arcm300t_z"], 1)
    ref = DeviceRef("xingfu", "efm-m")
    async with modbus_server([sim]) as server:
        data = site_config(tmp_path / "data", broker.port)
        path = tmp_path / "gateway.yaml"
        async with running_gateway(parse_config(data)) as rg:
            assert not rg.gw.modbus
            added = copy.deepcopy(data)
            added["sites"][0]["devices"].append(efm_device(server.port))
            assert (await reload_config(rg.gw, write_config(path, added))).ok
            await until(lambda: rg.gw.engine.status(ref).last_seen is not None, what="polled")
            assert (await rg.api.get("/api/health")).json()["modbus"]["buses"] == 1

            assert (await reload_config(rg.gw, write_config(path, data))).ok
            assert not rg.gw.modbus and not rg.gw.engine.knows(ref)
            reads = sum(b.stats.reads for b in rg.gw.modbus.buses)
            assert reads == 0 and (await rg.api.get("/api/health")).json()["modbus"] is None
            assert rg.gw.tasks.restarts == {}
