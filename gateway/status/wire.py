"""A device's JSON shape in the external contract (DESIGN section 8): its status and last
values, times in ISO 8601 with offset."""

from __future__ import annotations

from typing import Any

from gateway.config.clockface import Clockface
from gateway.config.inventory import InstalledDevice
from gateway.status.device import device_state
from rules.engine import DeviceStatus


def device_json(d: InstalledDevice, status: DeviceStatus, clock: Clockface) -> dict[str, Any]:
    return {
        "id": d.ref.device,
        "site": d.ref.site,
        "type": d.type.value,
        "location": d.config.location,
        "name": d.config.name,
        "transport": d.config.transport,
        "shutoff_valve": d.config.shutoff_valve,
        "status": device_state(status).value,
        "last_seen": clock.iso(status.last_seen),
        "values": {name: value for name, (value, _) in sorted(status.values.items())},
        "values_at": {name: clock.iso(at) for name, (_, at) in sorted(status.values.items())},
    }
