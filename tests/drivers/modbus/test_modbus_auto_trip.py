"""Automatic trip and `reset` over Modbus TCP, end to end: the gateway polls a simulated
Acrel ARCM300T-Z and an IGD TOC-635 Plus panel (pymodbus servers on loopback), writes the
trip coil and the reset coil, and confirms each by reading its feedback point back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.modbus.profile import builtin_profiles
from gateway.config.loading import parse_config
from rules.model import DeviceRef
from simulator.modbus_server import SimModbusDevice, SimModbusServer
from tests.conftest import Mosquitto, RunningGateway, running_gateway, site_config, until
from tests.support.modbus import EFM, GAC, modbus_devices


async def _result(rg: RunningGateway, command_id: str, timeout: float = 5.0) -> str | None:
    """The command's result once the store has one (or None at the timeout)."""
    for _ in range(int(timeout / 0.05)):
        found = [c for c in await rg.gw.store.commands() if c.id == command_id]
        if found and found[0].result is not None:
            return found[0].result
        await asyncio.sleep(0.05)
    return None


async def _polls(rg: RunningGateway, device: str, n: int) -> None:
    """Wait until the gateway has read `device` `n` more times."""
    ref = DeviceRef("xingfu", device)

    def last() -> float | None:
        return rg.gw.engine.status(ref).last_seen

    for _ in range(n):
        seen = last()
        await until(lambda seen=seen: last() != seen, what=f"a poll of {device}")


def _open(rg: RunningGateway, type_: str, device: str) -> list[Any]:
    return [a for a in rg.gw.book.open_alarms() if a.type.value == type_ and a.device == device]


async def test_auto_trip_with_second_condition_and_reset_over_modbus(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    profiles = builtin_profiles()
    efm = SimModbusDevice(profiles["acrel_arcm300t_z"], EFM, travel_s=0.2)
    gac = SimModbusDevice(profiles["igd_toc_635_plus"], GAC, travel_s=0.2)
    efm.set_quantity("residual_ma", 35)
    for ch in (1, 2, 3, 4):
        efm.set_quantity(f"temp_c_{ch}", 28.0)
    for ch in range(1, 9):  # raw 0 would be -10 %LEL on this panel
        gac.set_quantity("lel", 0.0, channel=ch)
    gac.set_value("area1_status", 1)  # AL1 latched on the panel from an earlier alarm
    async with modbus_server([efm, gac]) as server:
        devices = [d for d in modbus_devices(server.port) if d["id"] != "valve-m"]
        devices[2].pop("shutoff_valve")  # gas-c1: no valve in this plant
        # Overtemperature trips only when residual current agrees (seed 001: power cut on
        # an electrical fire; a lone hot sensor may be a sensor fault).
        devices[0]["auto_trip"] = {
            "on": ["overtemperature"],
            # no delay here (tests/rules cover it): every decision is then taken on a poll
            "agree": {"alarm": "residual_current"},
            "confirm_timeout": "1 s",
        }
        data = site_config(tmp_path / "data", broker.port, extra_devices=devices)
        async with running_gateway(parse_config(data)) as rg:
            api = rg.api
            await until(
                lambda: rg.gw.engine.status(DeviceRef("xingfu", "gas-c1")).last_seen,
                what="first polls",
            )
            # reset: the panel's "reset all alarms" coil, confirmed by area 1 reading 0.
            r = await api.post("/api/devices/gac-1/commands", json={"by": "电工", "cmd": "reset"})
            assert r.status_code == 202, r.text
            reset_id = r.json()["id"]
            assert await _result(rg, reset_id) == "ok"
            assert gac.value("area1_status") == 0
            # The Acrel map has no reset register (no public source shows one): 400.
            r = await api.post("/api/devices/efm-m/commands", json={"by": "电工", "cmd": "reset"})
            assert r.status_code == 400 and "no reset" in r.json()["error"]

            # Overtemperature alone: an alarm, no trip.
            efm.set_quantity("temp_c_2", 85.0)
            (hot,) = await until(lambda: _open(rg, "overtemperature", "efm-m"), what="hot")
            await _polls(rg, "efm-m", 3)  # and the ticks between them
            assert efm.value("trip_relay") == 0.0
            assert not [e for e in hot.timeline if e.action.value == "command_sent"]

            # Residual current agrees: the trip coil is written and read back from the relay.
            efm.set_quantity("residual_ma", 480)
            sent = await until(
                lambda: [e for e in hot.timeline if e.action.value == "command_sent"],
                what="trip on the overtemperature alarm's timeline",
            )
            assert sent[0].detail["why"].endswith("agreed: residual_current")
            done = await until(
                lambda: [e for e in hot.timeline if e.action.value == "command_result"],
                timeout=5,
                what="trip confirmed by read-back",
            )
            assert done[0].detail["ok"] is True
            assert efm.value("trip_relay") == 1.0
            assert _open(rg, "trip_failure", "efm-m") == []

            # While the panel's channel has an open gas alarm, reset is refused (409).
            gac.set_quantity("lel", 30.0, channel=1)
            await until(lambda: _open(rg, "gas_leak", "gas-c1"), what="gas alarm")
            r = await api.post("/api/devices/gac-1/commands", json={"by": "电工", "cmd": "reset"})
            assert r.status_code == 409 and "gas-c1" in r.json()["error"]

            # A new episode with a relay that does not move: trip_failure at the 1 s deadline.
            efm.set_quantity("residual_ma", 35)
            efm.set_quantity("temp_c_2", 30.0)
            await until(lambda: hot.state.value == "cleared", what="overtemperature cleared")
            efm.stuck = True
            efm.set_value("trip_relay", 0)
            efm.set_quantity("residual_ma", 480)
            efm.set_quantity("temp_c_2", 90.0)
            (failure,) = await until(
                lambda: _open(rg, "trip_failure", "efm-m"), timeout=5, what="trip_failure"
            )
            assert failure.latched and failure.reason == "trip_not_confirmed"
