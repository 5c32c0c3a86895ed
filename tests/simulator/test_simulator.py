"""`safety-gateway simulate` scenarios, run as the CLI against a real broker and gateway."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.alarms.book import Alarm
from gateway.config.loading import parse_config
from tests.conftest import (
    Mosquitto,
    RunningGateway,
    running_gateway,
    site_config,
    until,
    write_config,
)

pytestmark = pytest.mark.slow


def scenario_config(tmp_path: Path, port: int) -> dict[str, Any]:
    data = site_config(
        tmp_path / "data",
        port,
        rules={
            "valve_confirm_timeout": "2 s",
            "defaults": {
                "gas_detector": {"gas_leak": {"off_delay": "1 s"}},
                "electrical_fire_monitor": {"residual_current": {"on_delay": "1 s"}},
            },
        },
    )
    for dev in data["sites"][0]["devices"]:
        dev["report_interval"] = "0.5 s"  # the simulator reports every 0.5 s below
    return data


def alarms_of(rg: RunningGateway, type_: str) -> list[Alarm]:
    return [a for a in rg.gw.book.open_alarms() if a.type.value == type_]


async def simulate(
    cli_process: Callable[..., subprocess.Popen[bytes]], cfg: Path, scenario: str, linger: float
) -> subprocess.Popen[bytes]:
    return cli_process(
        "simulate",
        "-c",
        str(cfg),
        "--scenario",
        scenario,
        "--interval",
        "0.5",
        "--speed",
        "3",
        "--linger",
        str(linger),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


Check = Callable[[RunningGateway], Any]


def gas_leak_done(rg: RunningGateway) -> Any:
    gas = alarms_of(rg, "gas_leak")
    return gas and gas[0].state.value == "cleared" and gas[0].severity.value == "critical"


def stuck(rg: RunningGateway) -> Any:
    return alarms_of(rg, "valve_failure")


def offline_by(reason: str) -> Check:
    def check(rg: RunningGateway) -> Any:
        return [
            a
            for a in alarms_of(rg, "device_offline")
            if a.reason == reason and a.device == "gas-kitchen"
        ]

    return check


def pressed(rg: RunningGateway) -> Any:
    return alarms_of(rg, "fire_button")


def residual(rg: RunningGateway) -> Any:
    return alarms_of(rg, "residual_current")


@pytest.mark.parametrize(
    ("scenario", "check"),
    [
        ("gas_leak", gas_leak_done),
        ("stuck_valve", stuck),
        ("button_press", pressed),
        ("device_offline", offline_by("status_offline")),
        ("device_silent", offline_by("silent")),
        ("residual_current", residual),
    ],
)
async def test_scenario_produces_its_alarm(
    tmp_path: Path,
    broker: Mosquitto,
    scenario: str,
    check: Check,
    cli_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    data = scenario_config(tmp_path, broker.port)
    cfg = write_config(tmp_path / "gateway.yaml", data)
    async with running_gateway(parse_config(data)) as rg:
        proc = await simulate(cli_process, cfg, scenario, linger=60)
        try:
            await until(lambda: check(rg), timeout=45, what=f"scenario {scenario}'s alarm")
        finally:
            proc.terminate()
            out = proc.communicate(timeout=10)[0].decode()
        assert "Traceback" not in out, out
        if scenario == "gas_leak":
            gas = alarms_of(rg, "gas_leak")[0]
            actions = [e.action.value for e in gas.timeline]
            assert "command_result" in actions, "the simulated valve acknowledged the close"
            assert not alarms_of(rg, "valve_failure")
            assert gas.peak is not None and gas.peak >= 30


async def test_flapping_gives_one_alarm(
    tmp_path: Path, broker: Mosquitto, cli_process: Callable[..., subprocess.Popen[bytes]]
) -> None:
    data = scenario_config(tmp_path, broker.port)
    cfg = write_config(tmp_path / "gateway.yaml", data)
    async with running_gateway(parse_config(data)) as rg:
        proc = await simulate(cli_process, cfg, "flapping", linger=0)
        # Wait in a thread: the gateway's event loop must keep running meanwhile.
        stdout, _ = await asyncio.to_thread(proc.communicate, None, 60)
        assert proc.returncode == 0, stdout.decode()
        assert await rg.gw.store.flush(timeout_s=5)
        stored = await rg.gw.store.query(types=["gas_leak"])
        assert len(stored) == 1, "flapping around 20 %LEL must be one alarm"
        gas = rg.gw.book.get(stored[0].id)
        assert gas is not None
        assert gas.count == 1
        assert gas.state.value == "active"
        assert [e.action.value for e in gas.timeline].count("raised") == 1


def test_unknown_scenario_is_refused(
    tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    cfg = write_config(tmp_path / "gateway.yaml", site_config(tmp_path / "data", 1883))
    r = run_cli("simulate", "-c", str(cfg), "--scenario", "meteor")
    assert r.returncode == 2
    assert "unknown scenario 'meteor'" in r.stderr
    assert "gas_leak" in r.stderr
