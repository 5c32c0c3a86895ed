"""gateway/app/modbus_buses.py: a reload restarts only the buses whose devices changed.
No servers: links are built, not run."""

from __future__ import annotations

import copy
from typing import Any

from gateway.app.modbus_buses import ModbusBuses
from gateway.config.loading import parse_config
from rules.model import CommandKind, DeviceRef
from tests.support.config import base


def efm(id_: str, host: str, unit: int = 1) -> dict[str, Any]:
    return {
        "id": id_,
        "type": "electrical_fire_monitor",
        "location": "panel",
        "transport": "modbus",
        "modbus": {"host": host, "port": 1502, "unit": unit, "profile": "acrel_arcm300t_z"},
    }


def with_buses(*devices: dict[str, Any]) -> Any:
    data = copy.deepcopy(base())
    data["sites"][0]["devices"] += list(devices)
    return parse_config(data)


def test_only_the_changed_bus_is_restarted() -> None:
    buses = ModbusBuses(with_buses(efm("m1", "127.0.0.1"), efm("m2", "127.0.0.2")))
    first = dict(buses.links)
    assert sorted(first) == ["tcp://127.0.0.1:1502", "tcp://127.0.0.2:1502"]
    change = buses.reconfigure(
        with_buses(efm("m1", "127.0.0.1"), efm("m2", "127.0.0.2"), efm("m3", "127.0.0.2", 2))
    )
    assert list(change.stopped) == ["tcp://127.0.0.2:1502"]
    assert list(change.started) == ["tcp://127.0.0.2:1502"]
    assert buses.links["tcp://127.0.0.1:1502"] is first["tcp://127.0.0.1:1502"]  # kept, running
    assert buses.handles(DeviceRef("site-a", "m3"))
    change = buses.reconfigure(with_buses(efm("m1", "127.0.0.1")))
    assert list(change.stopped) == ["tcp://127.0.0.2:1502"] and not change.started
    assert not buses.handles(DeviceRef("site-a", "m2"))
    assert not buses.supports(DeviceRef("site-a", "m2"), CommandKind.CLOSE_VALVE)
    assert buses.stats()["devices"] == 1
    buses.reconfigure(with_buses())
    assert not buses
