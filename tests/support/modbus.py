"""The Modbus devices of the end-to-end and simulator tests, as site configuration."""

from __future__ import annotations

from typing import Any

EFM, GAC, VALVE = 1, 2, 3  # unit ids on the simulated bus


def modbus_devices(port: int, poll: float = 0.2) -> list[dict[str, Any]]:
    def ep(unit: int, profile: str) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": port,
            "unit": unit,
            "profile": profile,
            "timeout": "0.3 s",
        }

    return [
        {
            "id": "efm-m",
            "type": "electrical_fire_monitor",
            "location": "配电室",
            "transport": "modbus",
            "modbus": ep(EFM, "acrel_arcm300t_z"),
            "poll_interval_s": poll,
            "thresholds": {
                "residual_current": {"on_delay": "0.5 s", "off_delay": "0.5 s"},
                "overtemperature": {"on_delay": "0.5 s", "off_delay": "0.5 s"},
            },
        },
        {
            "id": "gac-1",
            "type": "gas_alarm_controller",
            "location": "燃气表间",
            "transport": "modbus",
            "modbus": ep(GAC, "igd_toc_635_plus"),
            "poll_interval_s": poll,
            "channels": {1: "gas-c1", 2: "gas-c2"},
        },
        {
            "id": "gas-c1",
            "type": "gas_detector",
            "location": "二楼厨房",
            "transport": "channel",
            "shutoff_valve": "valve-m",
        },
        {"id": "gas-c2", "type": "gas_detector", "location": "锅炉房", "transport": "channel"},
        {
            "id": "valve-m",
            "type": "gas_valve",
            "location": "燃气总阀",
            "transport": "modbus",
            "modbus": ep(VALVE, "rotork_iq_pro"),
            "poll_interval_s": poll,
        },
    ]
