"""Modbus end to end: the gateway polls real pymodbus TCP servers on loopback.

Electrical-fire monitor (Acrel profile), an 8-channel gas alarm controller (IGD TOC-635)
whose channels are gas detectors, and a Rotork valve actuator, each served by the
simulator's `SimModbusServer`. The MQTT broker is real too (the gateway needs one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.modbus.poller import jitter_p99
from drivers.modbus.profile import builtin_profiles
from gateway.config.loading import parse_config
from rules.model import CommandKind, DeviceRef
from simulator.modbus_server import DeviceMode, SimModbusDevice, SimModbusServer
from tests.conftest import Mosquitto, RunningGateway, running_gateway, site_config, until
from tests.support.modbus import EFM, GAC, VALVE, modbus_devices


@dataclass
class Plant:
    rg: RunningGateway
    efm: SimModbusDevice
    gac: SimModbusDevice
    valve: SimModbusDevice
    server: SimModbusServer


@contextlib.asynccontextmanager
async def plant(
    tmp_path: Path,
    broker: Mosquitto,
    modbus_server: Callable[..., SimModbusServer],
    rules: dict[str, Any] | None = None,
) -> AsyncIterator[Plant]:
    profiles = builtin_profiles()
    efm = SimModbusDevice(profiles["acrel_arcm300t_z"], EFM, travel_s=0.2)
    gac = SimModbusDevice(profiles["igd_toc_635_plus"], GAC, travel_s=0.2)
    valve = SimModbusDevice(profiles["rotork_iq_pro"], VALVE, travel_s=0.2)
    valve.set_quantity("open", 1)
    efm.set_quantity("residual_ma", 35)
    for ch in range(1, 9):  # raw 0 would be -10 %LEL on this panel
        gac.set_quantity("lel", 0.0, channel=ch)
    for ch in (1, 2, 3, 4):
        efm.set_quantity(f"temp_c_{ch}", 28.0)
    async with modbus_server([efm, gac, valve]) as server:
        data = site_config(
            tmp_path / "data", broker.port, rules=rules or {"valve_confirm_timeout": "2 s"},
            extra_devices=modbus_devices(server.port),
        )  # fmt: skip
        async with running_gateway(parse_config(data)) as rg:
            await until(
                lambda: rg.gw.engine.status(DeviceRef("xingfu", "valve-m")).last_seen is not None,
                what="first polls",
            )
            yield Plant(rg, efm, gac, valve, server)


def ref(device: str) -> DeviceRef:
    return DeviceRef("xingfu", device)


def open_of(p: Plant, type_: str, device: str | None = None) -> list[Any]:
    return [
        a
        for a in p.rg.gw.book.open_alarms()
        if a.type.value == type_ and (device is None or a.device == device)
    ]


async def test_each_profile_decodes_through_the_gateway(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    async with plant(tmp_path, broker, modbus_server) as p:
        p.efm.set_quantity("residual_ma", 123)
        p.efm.set_quantity("temp_c_3", -12.5)  # signed, 0.1 °C
        p.gac.set_quantity("lel", 7.5, channel=1)  # scale 0.1, offset -10
        p.gac.set_quantity("lel", 0.0, channel=2)

        def seen() -> Any:
            efm = p.rg.gw.engine.status(ref("efm-m")).values
            c1 = p.rg.gw.engine.status(ref("gas-c1")).values
            return efm.get("residual_ma", (0,))[0] == 123 and c1.get("lel", (0,))[0] == 7.5 and efm

        efm = await until(seen, what="decoded values")
        assert efm["temp_c_3"][0] == pytest.approx(-12.5)
        assert efm["temp_c_1"][0] == pytest.approx(28.0)
        devices = {d["id"]: d for d in (await p.rg.api.get("/api/devices")).json()}
        assert devices["gas-c1"]["values"] == {"lel": 7.5}
        assert devices["gas-c2"]["values"] == {"lel": 0.0}
        assert devices["valve-m"]["values"] == {"open": 1.0}
        assert devices["efm-m"]["status"] == "online"
        # The commissioning page's raw registers: the residual current's word as read.
        one = (await p.rg.api.get("/api/devices/efm-m")).json()
        assert one["transport"] == "modbus" and one["raw"] is None
        values = [v for b in one["registers"]["blocks"] for v in b["values"]]
        assert 123 in values and one["registers"]["at"]
        health = (await p.rg.api.get("/api/health")).json()
        assert health["modbus"]["buses"] == 1
        assert health["modbus"]["devices"] == 3
        assert health["modbus"]["offline"] == 0


async def test_residual_current_and_overtemperature_alarms(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    async with plant(tmp_path, broker, modbus_server) as p:
        p.efm.set_quantity("residual_ma", 450)
        residual = await until(lambda: open_of(p, "residual_current"), what="residual alarm")
        assert residual[0].severity.value == "major"
        assert residual[0].value == 450
        p.efm.set_quantity("temp_c_2", 82.0)
        hot = await until(lambda: open_of(p, "overtemperature"), what="overtemperature alarm")
        assert hot[0].value == pytest.approx(82.0)
        # Back to normal: both clear after their off-delay.
        p.efm.set_quantity("residual_ma", 40)
        p.efm.set_quantity("temp_c_2", 30.0)
        await until(
            lambda: residual[0].state.value == "cleared" and hot[0].state.value == "cleared",
            what="both cleared",
        )


async def test_gas_channel_closes_the_modbus_valve_and_it_is_confirmed(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    async with plant(tmp_path, broker, modbus_server) as p:
        p.gac.set_quantity("lel", 28.0, channel=1)
        gas = (
            await until(lambda: open_of(p, "gas_leak", "gas-c1"), what="gas alarm on channel 1")
        )[0]
        assert gas.severity.value == "critical"
        close = p.valve.profile.command(CommandKind.CLOSE_VALVE)
        assert close is not None
        await until(
            lambda: any(w.address == close.address and w.value == 1 for w in p.valve.writes),
            what="close coil written",
        )
        await until(
            lambda: "command_result" in [e.action.value for e in gas.timeline], what="confirmed"
        )
        result = next(e for e in gas.timeline if e.action.value == "command_result")
        assert result.detail is not None and result.detail["ok"] is True
        assert p.rg.gw.engine.status(ref("valve-m")).values["open"][0] == 0.0
        assert not open_of(p, "valve_failure")
        # The gateway wrote only the close coil, never the open one.
        open_cmd = p.valve.profile.command(CommandKind.OPEN_VALVE)
        assert open_cmd is not None
        assert all(w.address != open_cmd.address for w in p.valve.writes)


async def test_stuck_modbus_valve_raises_valve_failure(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    async with plant(tmp_path, broker, modbus_server) as p:
        p.valve.stuck = True
        p.gac.set_quantity("lel", 35.0, channel=1)
        failure = await until(
            lambda: open_of(p, "valve_failure", "valve-m"), timeout=15, what="valve_failure"
        )
        assert failure[0].severity.value == "critical"
        assert p.valve.writes, "the close was written; the valve just did not move"


async def test_silent_device_goes_offline_and_comes_back(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    async with plant(tmp_path, broker, modbus_server) as p:
        p.efm.mode = DeviceMode.SILENT
        offline = await until(
            lambda: open_of(p, "device_offline", "efm-m"), timeout=15, what="offline"
        )
        assert offline[0].reason == "poll_failed"
        health = (await p.rg.api.get("/api/health")).json()
        assert health["modbus"]["offline"] == 1
        # The others on the same bus keep being polled.
        before = p.rg.gw.engine.status(ref("valve-m")).last_seen
        await until(
            lambda: p.rg.gw.engine.status(ref("valve-m")).last_seen != before,
            what="the valve polled again while efm-m is silent",
        )
        p.efm.mode = DeviceMode.NORMAL
        await until(lambda: offline[0].state.value == "cleared", timeout=20, what="back online")


async def test_exception_responses_raise_device_fault(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    async with plant(tmp_path, broker, modbus_server) as p:
        p.gac.mode = DeviceMode.EXCEPTION
        # The controller and both of its channels are faulty; none is offline: it answers.
        for device in ("gac-1", "gas-c1", "gas-c2"):
            fault = await until(
                lambda d=device: open_of(p, "device_fault", d), what=f"fault on {device}"
            )
            assert fault[0].reason == "exception_response"
        assert not open_of(p, "device_offline")
        p.gac.mode = DeviceMode.NORMAL
        await until(
            lambda: all(a.state.value == "cleared" for a in open_of(p, "device_fault")),
            what="cleared",
        )


async def test_status_bit_fault_on_one_channel(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    async with plant(tmp_path, broker, modbus_server) as p:
        fault_bits = [
            s for s in p.gac.profile.status_bits if s.meaning == "fault" and s.channel == 2
        ]
        p.gac.set_flag(fault_bits[0].name, True)
        fault = await until(lambda: open_of(p, "device_fault", "gas-c2"), what="channel 2 fault")
        assert fault[0].reason == "status_bit"
        assert not open_of(p, "device_fault", "gas-c1")
        p.gac.set_flag(fault_bits[0].name, False)
        await until(lambda: fault[0].state.value == "cleared", what="fault cleared")


async def test_trip_command_confirmed_and_stuck_trip_alarms(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    async with plant(tmp_path, broker, modbus_server) as p:
        r = await p.rg.api.post("/api/devices/efm-m/commands", json={"by": "电工", "cmd": "trip"})
        assert r.status_code == 202, r.text
        trip_id = r.json()["id"]
        for _ in range(200):
            record = next((c for c in await p.rg.gw.store.commands() if c.id == trip_id), None)
            if record is not None and record.result is not None:
                break
            await asyncio.sleep(0.05)
        assert record is not None and record.result == "ok", record
        assert record.requested_by == "电工"
        assert p.efm.value("trip_relay") == 1.0
        r = await p.rg.api.post("/api/devices/valve-m/commands", json={"by": "x", "cmd": "trip"})
        assert r.status_code == 400
        # A relay that does not move: trip_failure, latched for a person to close.
        p.efm.stuck = True
        p.efm.set_value("trip_relay", 0)
        r = await p.rg.api.post("/api/devices/efm-m/commands", json={"by": "电工", "cmd": "trip"})
        assert r.status_code == 202
        failure = await until(
            lambda: open_of(p, "trip_failure", "efm-m"), timeout=15, what="trip_failure"
        )
        assert failure[0].latched
        assert failure[0].severity.value == "major"


async def test_a_dead_device_does_not_delay_healthy_ones(
    tmp_path: Path, broker: Mosquitto, modbus_server: Callable[..., SimModbusServer]
) -> None:
    """Healthy devices on one bus keep their rhythm while a device on another bus times out.

    The dead device's requests take its full timeout (1 s) each; if buses were not
    independent, healthy polls would slip by that much. The bound is generous (a quarter of
    the dead device's timeout), so this checks isolation, not speed."""
    profiles = builtin_profiles()
    healthy = [SimModbusDevice(profiles["acrel_arcm300t_z"], unit) for unit in range(1, 6)]
    dead = SimModbusDevice(profiles["acrel_arcm300t_z"], 1, mode=DeviceMode.SILENT)
    async with modbus_server(healthy) as good, modbus_server([dead]) as bad:
        devices = [
            {
                "id": f"efm-h{d.unit}",
                "type": "electrical_fire_monitor",
                "location": "配电室",
                "transport": "modbus",
                "modbus": {
                    "host": "127.0.0.1",
                    "port": good.port,
                    "unit": d.unit,
                    "profile": "acrel_arcm300t_z",
                },
                "poll_interval_s": 0.2,
            }
            for d in healthy
        ]
        devices.append(
            {
                "id": "efm-dead",
                "type": "electrical_fire_monitor",
                "location": "配电室",
                "transport": "modbus",
                "modbus": {
                    "host": "127.0.0.1",
                    "port": bad.port,
                    "unit": 1,
                    "profile": "acrel_arcm300t_z",
                    "timeout": "1 s",
                    "retries": 1,
                    "offline_after_failures": 100,
                },
                "poll_interval_s": 0.2,
            }
        )
        data = site_config(tmp_path / "data", broker.port, extra_devices=devices)
        async with running_gateway(parse_config(data)) as rg:
            await asyncio.sleep(4)  # the measurement window: polls and jitter over 4 s
            assert rg.gw.modbus is not None
            healthy_targets = [
                t for b in rg.gw.modbus.buses for t in b.targets if t.ref.device != "efm-dead"
            ]
            dead_targets = [
                t for b in rg.gw.modbus.buses for t in b.targets if t.ref.device == "efm-dead"
            ]
            polls = sum(t.polls for t in healthy_targets)
            p99 = jitter_p99(healthy_targets)
            assert dead_targets[0].failures >= 1, "the dead device really timed out"
            assert polls >= 5 * 15, f"healthy devices kept polling (got {polls} polls in 4 s)"
            assert p99 < 0.25, f"p99 poll jitter of healthy devices {p99 * 1000:.0f} ms"


async def test_rtu_device_on_a_missing_serial_port_goes_offline(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The RTU path (pyserial through pymodbus) is built and fails cleanly: no port, offline."""
    device = {
        "id": "efm-rtu",
        "type": "electrical_fire_monitor",
        "location": "配电室",
        "transport": "modbus",
        "modbus": {
            "serial": str(tmp_path / "ttyUSB-missing"),
            "baudrate": 9600,
            "unit": 1,
            "profile": "acrel_arcm300t_z",
            "timeout": "0.2 s",
            "retries": 0,
            "offline_after_failures": 2,
        },
        "poll_interval_s": 0.2,
    }
    data = site_config(tmp_path / "data", broker.port, extra_devices=[device])
    async with running_gateway(parse_config(data)) as rg:
        assert rg.gw.modbus is not None
        assert rg.gw.modbus.buses[0].name.startswith("rtu://")
        offline = await until(
            lambda: [
                a
                for a in rg.gw.book.open_alarms()
                if a.device == "efm-rtu" and a.type.value == "device_offline"
            ],
            what="RTU device offline",
        )
        assert offline[0].reason == "poll_failed"
        assert rg.gw.health()["internal_errors"] == 0
