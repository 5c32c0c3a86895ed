"""Configuration of Modbus buses: one unit id per bus, one line setting per serial port, and
what the poller is given (gap, dead share) from it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.config.loading import parse_config
from gateway.ingest.modbus_plan import modbus_plan
from tests.support.config import base, problems_of


def monitor(id_: str, unit: int, **modbus: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "type": "electrical_fire_monitor",
        "location": "配电室",
        "transport": "modbus",
        "modbus": {"serial": "/dev/ttyUSB0", "unit": unit, "profile": "acrel_arcm300t_z"} | modbus,
    }


def with_devices(*devices: dict[str, Any]) -> Any:
    data = copy.deepcopy(base())
    data["sites"][0]["devices"] += list(devices)
    return data


def test_a_serial_line_gets_its_gap_parity_and_dead_share() -> None:
    config = parse_config(
        with_devices(
            monitor("m1", 1, baudrate=19200, parity="E", dead_share=0.2),
            monitor("m2", 2, baudrate=19200, parity="E", dead_share=0.05),
        )
    )
    (plan,) = modbus_plan(config)
    ep = plan.endpoint
    assert (ep.name, ep.baudrate, ep.parity, ep.stopbits) == ("rtu:///dev/ttyUSB0", 19200, "E", 1)
    assert ep.dead_share == 0.05  # the strictest device of the line
    assert ep.gap_s == pytest.approx(3.5 * 11 / 19200)
    tcp = modbus_plan(parse_config(with_devices(monitor("m1", 1, serial=None, host="10.0.0.9"))))
    assert tcp[0].endpoint.gap_s == 0.0  # a TCP frame has its own length


def test_two_devices_on_one_unit_id_are_refused() -> None:
    problems = problems_of(with_devices(monitor("m1", 3), monitor("m2", 3)))
    assert any("unit 3 on rtu:///dev/ttyUSB0 is already m1" in p for p in problems), problems
    # The same unit id on another line is another device.
    parse_config(with_devices(monitor("m1", 3), monitor("m2", 3, serial="/dev/ttyUSB1")))


def test_one_line_has_one_baud_rate() -> None:
    problems = problems_of(with_devices(monitor("m1", 1), monitor("m2", 2, baudrate=19200)))
    assert any("baudrate, parity, stopbits (9600, 'N', 1)" in p for p in problems), problems
    assert problems_of(with_devices(monitor("m1", 1, dead_share=0)))
