"""`safety-gateway simulate` driving Modbus devices: the CLI serves the site's Modbus TCP
devices from pymodbus servers on their configured ports, and the gateway polls them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config.loading import parse_config
from tests.conftest import (
    Mosquitto,
    RunningGateway,
    free_port,
    running_gateway,
    site_config,
    until,
    write_config,
)
from tests.support.modbus import modbus_devices

pytestmark = pytest.mark.slow


def open_of(rg: RunningGateway, type_: str, device: str) -> list[Any]:
    return [a for a in rg.gw.book.open_alarms() if a.type.value == type_ and a.device == device]


def confirmed_gas_alarm(rg: RunningGateway) -> Any:
    gas = open_of(rg, "gas_leak", "gas-c1")
    return gas and any(
        e.action.value == "command_result" and (e.detail or {}).get("ok") for e in gas[0].timeline
    )


CHECKS: dict[str, Callable[[RunningGateway], Any]] = {
    "residual_current": lambda rg: open_of(rg, "residual_current", "efm-m"),
    "cable_overheating": lambda rg: open_of(rg, "overtemperature", "efm-m"),
    "gas_channel_leak": confirmed_gas_alarm,
    "modbus_silent": lambda rg: open_of(rg, "device_offline", "efm-m"),
    "exception_responses": lambda rg: [
        a for a in open_of(rg, "device_fault", "efm-m") if a.reason == "exception_response"
    ],
}


DEVICE = {
    "residual_current": "efm-m",
    "cable_overheating": "efm-m",
    "gas_channel_leak": "gas-c1",
    "modbus_silent": "efm-m",
    "exception_responses": "efm-m",
}


@pytest.mark.parametrize("scenario", sorted(CHECKS))
async def test_modbus_scenario(
    tmp_path: Path,
    broker: Mosquitto,
    scenario: str,
    cli_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    port = free_port()
    data = site_config(tmp_path / "data", broker.port, extra_devices=modbus_devices(port, poll=0.3))
    cfg = write_config(tmp_path / "gateway.yaml", data)
    proc = cli_process(
        "simulate", "-c", str(cfg), "--scenario", scenario,
        "--interval", "0.5", "--speed", "3", "--linger", "60", "--device", DEVICE[scenario],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with running_gateway(parse_config(data)) as rg:
            await until(lambda: CHECKS[scenario](rg), timeout=45, what=f"{scenario}'s alarm")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
        print(out)  # the simulator's side, shown when the test fails
    assert "Traceback" not in out, out


def test_simulating_a_remote_modbus_device_is_refused(
    tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    data = site_config(tmp_path / "data", 1883, extra_devices=modbus_devices(502))
    data["sites"][0]["devices"][-1]["modbus"]["host"] = "10.1.2.3"
    cfg = write_config(tmp_path / "gateway.yaml", data)
    r = run_cli("simulate", "-c", str(cfg), "--scenario", "normal")
    assert r.returncode == 2
    assert "only Modbus TCP devices on 127.0.0.1 can be simulated" in r.stderr
