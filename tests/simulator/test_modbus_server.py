"""The simulated Modbus devices, exercised with a real pymodbus client over loopback.

Values set in engineering units must come back through `drivers.modbus.codec` unchanged,
commands must move the confirmation point after the travel time, and the failure modes
must look on the wire like the real failures: silence (a timeout) and exception responses.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusIOException

from drivers.modbus.codec import ReadBlock, decode, plan_reads
from drivers.modbus.profile import Profile, Table
from simulator.modbus_server import (
    DeviceMode,
    SimModbusDevice,
    SimModbusServer,
    WriteRecord,
    encode_point,
)
from tests.conftest import free_port, until

TRAVEL_S = 0.2
CLIENT_TIMEOUT_S = 0.5


def monitor_profile() -> Profile:
    """Every data type, both word orders, all four tables, flags in a register and a bit."""
    return Profile.model_validate(
        {
            "name": "sim_monitor",
            "vendor": "Test",
            "model": "EFM-1",
            "manual": "made up for the simulator tests",
            "device_type": "electrical_fire_monitor",
            "channels": 2,
            "points": [
                {"name": "voltage", "table": "holding", "address": 0, "type": "u16",
                 "scale": 0.1, "quantity": "voltage_v"},
                {"name": "temp_1", "table": "holding", "address": 1, "type": "s16",
                 "scale": 0.1, "quantity": "temp_c", "channel": 1},
                {"name": "energy_big", "table": "holding", "address": 2, "type": "u32",
                 "scale": 0.01},
                {"name": "energy_little", "table": "holding", "address": 4, "type": "u32",
                 "scale": 0.01, "word_order": "little"},
                {"name": "trip_state", "table": "holding", "address": 21, "type": "u16"},
                {"name": "current", "table": "input", "address": 100, "type": "f32",
                 "quantity": "current_a"},
                {"name": "residual", "table": "input", "address": 102, "type": "s32",
                 "word_order": "little", "scale": 0.5, "offset": 10.0,
                 "quantity": "residual_ma"},
                {"name": "temp_2", "table": "input", "address": 110, "type": "s16",
                 "scale": 0.1, "offset": -40.0, "quantity": "temp_c", "channel": 2},
                {"name": "relay", "table": "coil", "address": 5, "type": "bool"},
                {"name": "door_open", "table": "discrete_input", "address": 3, "type": "bool",
                 "invert": True},
            ],
            "status_bits": [
                {"name": "self_test_fault", "table": "holding", "address": 10, "bit": 0,
                 "meaning": "fault"},
                {"name": "mains_ok", "table": "holding", "address": 10, "bit": 3,
                 "meaning": "info", "active_when": 0},
                {"name": "leak_alarm", "table": "holding", "address": 10, "bit": 15,
                 "meaning": "alarm", "channel": 1},
                {"name": "sensor_fault", "table": "discrete_input", "address": 4,
                 "meaning": "fault", "active_when": 0, "channel": 2},
            ],
            "commands": [
                {"cmd": "trip", "table": "holding", "address": 20, "value": 0xA5,
                 "confirm": {"point": "trip_state", "equals": 1}},
            ],
        }
    )  # fmt: skip


def valve_profile() -> Profile:
    """One coil: 1 closes, 0 opens; a limit switch reports `open`."""
    return Profile.model_validate(
        {
            "name": "sim_valve",
            "vendor": "Test",
            "model": "SV-1",
            "manual": "made up for the simulator tests",
            "device_type": "gas_valve",
            "points": [
                {"name": "open", "table": "discrete_input", "address": 0, "type": "bool",
                 "quantity": "open"},
            ],
            "commands": [
                {"cmd": "close_valve", "table": "coil", "address": 0, "value": 1,
                 "confirm": {"point": "open", "equals": 0}},
                {"cmd": "open_valve", "table": "coil", "address": 0, "value": 0,
                 "confirm": {"point": "open", "equals": 1}},
            ],
        }
    )  # fmt: skip


@asynccontextmanager
async def client_for(port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=CLIENT_TIMEOUT_S, retries=0)
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


async def read_block(client: AsyncModbusTcpClient, unit: int, block: ReadBlock) -> list[int]:
    readers: dict[Table, Any] = {
        Table.HOLDING: client.read_holding_registers,
        Table.INPUT: client.read_input_registers,
        Table.COIL: client.read_coils,
        Table.DISCRETE_INPUT: client.read_discrete_inputs,
    }
    rr = await readers[block.table](block.start, count=block.count, device_id=unit)
    assert not rr.isError(), rr
    if block.table.is_bit_table:
        return [int(b) for b in rr.bits[: block.count]]  # bits come padded to a byte
    assert len(rr.registers) == block.count
    return list(rr.registers)


async def poll(client: AsyncModbusTcpClient, device: SimModbusDevice) -> Any:
    """What the gateway will do: the planned reads, then decode."""
    blocks = plan_reads(device.profile)
    results = {b: await read_block(client, device.unit, b) for b in blocks}
    return decode(device.profile, results)


async def read_point(client: AsyncModbusTcpClient, device: SimModbusDevice, name: str) -> float:
    decoded = await poll(client, device)
    return float(decoded.raw[name])


async def until_value(
    client: AsyncModbusTcpClient, device: SimModbusDevice, name: str, want: float, within: float
) -> float:
    """Seconds until the point reads `want` over the wire; fails after `within`."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if await read_point(client, device, name) == want:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    pytest.fail(f"{name} did not reach {want} within {within} s")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- encoding, no network ---------------------------------------------------------------


def test_encode_is_the_inverse_of_decode() -> None:
    profile = monitor_profile()
    p = profile.point
    assert encode_point(p("voltage"), 231.4, "big") == [2314]
    assert encode_point(p("temp_1"), -12.5, "big") == [0x10000 - 125]
    assert encode_point(p("energy_big"), 0x12345678 / 100, "big") == [0x1234, 0x5678]
    assert encode_point(p("energy_little"), 0x12345678 / 100, "big") == [0x5678, 0x1234]
    assert encode_point(p("residual"), 10.0 - 0.5, "big") == [0xFFFF, 0xFFFF]  # raw -1
    assert encode_point(p("current"), 1.5, "big") == [0x3FC0, 0x0000]
    assert encode_point(p("current"), 1.5, "little") == [0x0000, 0x3FC0]
    assert encode_point(p("door_open"), 1, "big") == [0]  # inverted contact
    assert encode_point(p("relay"), 1, "big") == [1]


@pytest.mark.parametrize(
    ("point", "value"),
    [("voltage", -0.1), ("voltage", 6553.6), ("temp_1", 3276.8), ("temp_1", float("nan")),
     ("relay", 0.5), ("current", 1e39)],
)  # fmt: skip
def test_encode_rejects_what_the_type_cannot_hold(point: str, value: float) -> None:
    profile = monitor_profile()
    with pytest.raises(ValueError, match=point):
        encode_point(profile.point(point), value, profile.word_order)


def test_device_reads_back_through_decode_point() -> None:
    dev = SimModbusDevice(monitor_profile(), unit=1)
    dev.set_value("temp_2", -38.7)
    assert dev.value("temp_2") == pytest.approx(-38.7)
    dev.set_quantity("temp_c", 21.5, channel=1)
    assert dev.value("temp_1") == pytest.approx(21.5)
    with pytest.raises(KeyError):
        dev.set_quantity("temp_c", 1.0)  # no device-level temperature
    with pytest.raises(KeyError):
        dev.set_value("nope", 1.0)


# --- over the wire ----------------------------------------------------------------------


async def test_values_round_trip_through_the_codec(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    dev = SimModbusDevice(monitor_profile(), unit=1)
    dev.set_quantity("voltage_v", 229.8)
    dev.set_quantity("temp_c", -12.5, channel=1)
    dev.set_quantity("temp_c", -38.7, channel=2)
    dev.set_value("energy_big", 123456.78)
    dev.set_value("energy_little", 123456.78)
    dev.set_quantity("current_a", 13.25)
    dev.set_quantity("residual_ma", -20.5)  # raw -61: a negative s32 across two words
    dev.set_value("relay", 1)
    dev.set_value("door_open", 1)
    async with modbus_server([dev]) as server, client_for(server.port) as client:
        decoded = await poll(client, dev)
        # the words on the wire, as the profile lays them out
        rr = await client.read_holding_registers(0, count=6, device_id=1)
        assert rr.registers == [2298, 0x10000 - 125, 0x00BC, 0x614E, 0x614E, 0x00BC]
        di = await client.read_discrete_inputs(3, count=1, device_id=1)
        assert di.bits[0] is False  # door_open is inverted: 0 on the wire

    assert decoded.invalid == []
    assert decoded.values[None] == pytest.approx(
        {"voltage_v": 229.8, "current_a": 13.25, "residual_ma": -20.5}
    )
    assert decoded.values[1] == pytest.approx({"temp_c": -12.5})
    assert decoded.values[2] == pytest.approx({"temp_c": -38.7})
    assert decoded.raw["energy_big"] == pytest.approx(123456.78)
    assert decoded.raw["energy_little"] == pytest.approx(123456.78)
    assert decoded.raw["relay"] == 1.0
    assert decoded.raw["door_open"] == 1.0
    for name, value in decoded.raw.items():
        assert dev.value(name) == pytest.approx(value)


async def test_nan_f32_reaches_the_gateway_as_invalid(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    dev = SimModbusDevice(monitor_profile(), unit=1)
    dev.set_value("current", float("nan"))
    async with modbus_server([dev]) as server, client_for(server.port) as client:
        decoded = await poll(client, dev)
    assert decoded.invalid == ["current"]
    assert "current_a" not in decoded.values.get(None, {})


async def test_flags_round_trip(modbus_server: Callable[..., SimModbusServer]) -> None:
    dev = SimModbusDevice(monitor_profile(), unit=3)
    names = ["self_test_fault", "mains_ok", "leak_alarm", "sensor_fault"]
    async with modbus_server([dev]) as server, client_for(server.port) as client:
        fresh = await poll(client, dev)
        assert fresh.flags == dict.fromkeys(names, False)  # a new device is healthy
        assert fresh.faults == {}
        # active_when 0 flags are inactive with their bit set
        assert (await client.read_holding_registers(10, count=1, device_id=3)).registers == [8]
        assert (await client.read_discrete_inputs(4, count=1, device_id=3)).bits[0] is True

        dev.set_flag("self_test_fault", True)
        dev.set_flag("leak_alarm", True)
        dev.set_flag("sensor_fault", True)
        decoded = await poll(client, dev)
        assert decoded.flags == {
            "self_test_fault": True,
            "mains_ok": False,
            "leak_alarm": True,
            "sensor_fault": True,
        }
        assert decoded.faults == {None: ["self_test_fault"], 2: ["sensor_fault"]}
        word = (await client.read_holding_registers(10, count=1, device_id=3)).registers[0]
        assert word == 0x8000 | 0x0008 | 0x0001

        dev.set_flag("mains_ok", True)
        dev.set_flag("self_test_fault", False)
        decoded = await poll(client, dev)
        assert decoded.flags["mains_ok"] is True
        assert decoded.flags["self_test_fault"] is False
        assert decoded.flags["leak_alarm"] is True  # the other bits of the word are untouched
    assert {n: dev.flag(n) for n in names} == decoded.flags


async def test_close_command_moves_the_valve_after_travel(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    valve = SimModbusDevice(valve_profile(), unit=5, travel_s=TRAVEL_S)
    valve.set_value("open", 1)
    async with modbus_server([valve]) as server, client_for(server.port) as client:
        sent = time.monotonic()
        wr = await client.write_coil(0, True, device_id=5)
        assert not wr.isError()
        assert await read_point(client, valve, "open") == 1.0  # still travelling
        assert valve.moving
        await until_value(client, valve, "open", 0.0, within=TRAVEL_S + 1.0)
        assert time.monotonic() - sent >= TRAVEL_S * 0.9
        assert not valve.moving
        assert len(valve.writes) == 1
        w = valve.writes[0]
        assert (w.table, w.address, w.value) == (Table.COIL, 0, 1)
        assert sent <= w.at <= time.monotonic()
        coil = await client.read_coils(0, count=1, device_id=5)
        assert coil.bits[0] is True  # the written coil keeps its value

        await client.write_coil(0, False, device_id=5)  # open_valve
        await until_value(client, valve, "open", 1.0, within=TRAVEL_S + 1.0)
    assert [(w.address, w.value) for w in valve.writes] == [(0, 1), (0, 0)]


async def test_a_new_command_reverses_one_still_travelling(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    travel = 0.5
    valve = SimModbusDevice(valve_profile(), unit=5, travel_s=travel)
    valve.set_value("open", 1)
    async with modbus_server([valve]) as server, client_for(server.port) as client:
        await client.write_coil(0, True, device_id=5)  # close: would arrive at 0.5 s
        await asyncio.sleep(0.3)
        await client.write_coil(0, False, device_id=5)  # open: arrives at 0.8 s
        await asyncio.sleep(0.35)  # 0.65 s: the close would have arrived by now
        assert await read_point(client, valve, "open") == 1.0
        assert valve.moving  # the open command is still travelling
        await until_value(client, valve, "open", 1.0, within=1.0)
        await until(lambda: not valve.moving, 1.0, "the open command's travel over")
        assert await read_point(client, valve, "open") == 1.0


async def test_holding_register_command_trips_after_travel(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    dev = SimModbusDevice(monitor_profile(), unit=1, travel_s=TRAVEL_S)
    async with modbus_server([dev]) as server, client_for(server.port) as client:
        other = await client.write_register(20, 0x1234, device_id=1)  # not the trip value
        assert not other.isError()
        await asyncio.sleep(TRAVEL_S * 1.5)  # longer than a trip takes: a bounded look
        assert await read_point(client, dev, "trip_state") == 0.0
        assert not dev.moving

        await client.write_register(20, 0xA5, device_id=1)
        await until_value(client, dev, "trip_state", 1.0, within=TRAVEL_S + 1.0)
        rr = await client.read_holding_registers(20, count=2, device_id=1)
        assert rr.registers == [0xA5, 1]
    assert [(w.table, w.address, w.value) for w in dev.writes] == [
        (Table.HOLDING, 20, 0x1234),
        (Table.HOLDING, 20, 0xA5),
    ]


async def test_multiple_write_is_recorded_per_address(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    dev = SimModbusDevice(monitor_profile(), unit=1)
    async with modbus_server([dev]) as server, client_for(server.port) as client:
        wr = await client.write_registers(0, [2300, 5], device_id=1)
        assert not wr.isError()
    assert dev.value("voltage") == pytest.approx(230.0)
    assert [(w.address, w.value) for w in dev.writes] == [(0, 2300), (1, 5)]
    assert all(isinstance(w, WriteRecord) for w in dev.writes)


async def test_stuck_valve_accepts_the_write_and_never_moves(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    valve = SimModbusDevice(valve_profile(), unit=5, travel_s=TRAVEL_S, stuck=True)
    valve.set_value("open", 1)
    async with modbus_server([valve]) as server, client_for(server.port) as client:
        wr = await client.write_coil(0, True, device_id=5)
        assert not wr.isError()
        assert not valve.moving
        await asyncio.sleep(TRAVEL_S * 3)  # a stuck valve never arrives: a bounded look
        assert await read_point(client, valve, "open") == 1.0
    assert [(w.address, w.value) for w in valve.writes] == [(0, 1)]


async def test_silent_unit_times_out_while_another_answers(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    monitor = SimModbusDevice(monitor_profile(), unit=1)
    monitor.set_value("voltage", 230.0)
    valve = SimModbusDevice(valve_profile(), unit=2, mode=DeviceMode.SILENT)
    async with modbus_server([monitor, valve]) as server, client_for(server.port) as client:
        for unit in (2, 9):  # silent, and a unit no device uses
            start = time.monotonic()
            with pytest.raises(ModbusIOException):
                await client.read_discrete_inputs(0, count=1, device_id=unit)
            assert time.monotonic() - start >= CLIENT_TIMEOUT_S * 0.9
        with pytest.raises(ModbusIOException):
            await client.write_coil(0, True, device_id=2)
        assert valve.writes == []  # a silent device hears nothing

        # same connection, the other unit answers
        rr = await client.read_holding_registers(0, count=1, device_id=1)
        assert rr.registers == [2300]

        valve.mode = DeviceMode.NORMAL  # the line is repaired
        rr = await client.read_discrete_inputs(0, count=1, device_id=2)
        assert not rr.isError()


@pytest.mark.parametrize("code", [ExcCodes.DEVICE_FAILURE, ExcCodes.ILLEGAL_ADDRESS])
async def test_exception_unit_answers_with_its_exception_code(
    code: ExcCodes, modbus_server: Callable[..., SimModbusServer]
) -> None:
    monitor = SimModbusDevice(monitor_profile(), unit=1)
    valve = SimModbusDevice(valve_profile(), unit=2, mode=DeviceMode.EXCEPTION, exception_code=code)
    async with modbus_server([monitor, valve]) as server, client_for(server.port) as client:
        rr = await client.read_discrete_inputs(0, count=1, device_id=2)
        assert rr.isError()
        assert rr.exception_code == code
        assert rr.function_code == 0x80 | 2
        wr = await client.write_coil(0, True, device_id=2)
        assert wr.isError()
        assert wr.exception_code == code
        assert valve.writes == []
        assert not valve.moving
        ok = await client.read_holding_registers(0, count=1, device_id=1)
        assert not ok.isError()


async def test_addresses_outside_the_profile_are_illegal(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    monitor = SimModbusDevice(monitor_profile(), unit=1)
    valve = SimModbusDevice(valve_profile(), unit=2)
    async with modbus_server([monitor, valve]) as server, client_for(server.port) as client:
        gap = await client.read_holding_registers(6, count=4, device_id=1)  # unused, inside
        assert gap.registers == [0, 0, 0, 0]
        checks: Sequence[tuple[str, int, int]] = [
            ("read_holding_registers", 21, 2),  # runs past the last register
            ("read_input_registers", 99, 1),  # before the first
            ("read_coils", 0, 1),  # the monitor has coil 5 only
        ]
        for method, address, count in checks:
            rr = await getattr(client, method)(address, count=count, device_id=1)
            assert rr.isError(), method
            assert rr.exception_code == ExcCodes.ILLEGAL_ADDRESS
        rr = await client.read_input_registers(0, count=1, device_id=2)  # no input registers
        assert rr.exception_code == ExcCodes.ILLEGAL_ADDRESS
        wr = await client.write_coil(7, True, device_id=2)
        assert wr.exception_code == ExcCodes.ILLEGAL_ADDRESS
    assert valve.writes == []


async def test_two_servers_run_at_once_and_stop_cleanly(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    a = SimModbusDevice(monitor_profile(), unit=1)
    b = SimModbusDevice(monitor_profile(), unit=1)
    a.set_value("voltage", 220.0)
    b.set_value("voltage", 240.0)
    first = modbus_server([a])
    async with first, modbus_server([b]) as second:
        assert first.port != second.port
        async with client_for(first.port) as ca, client_for(second.port) as cb:
            assert (await ca.read_holding_registers(0, count=1, device_id=1)).registers == [2200]
            assert (await cb.read_holding_registers(0, count=1, device_id=1)).registers == [2400]
        port_a = first.port
    assert not first.running
    assert not second.running
    assert not port_open(port_a)
    with pytest.raises(RuntimeError):
        _ = first.port


async def test_stop_drops_connected_clients_and_pending_actuations(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    valve = SimModbusDevice(valve_profile(), unit=5, travel_s=TRAVEL_S)
    valve.set_value("open", 1)
    server = modbus_server([valve])
    await server.start()
    port = server.port
    async with client_for(port) as client:
        await client.write_coil(0, True, device_id=5)
        assert valve.moving
        await server.stop()
        assert not valve.moving
        await asyncio.sleep(TRAVEL_S * 2)  # the forgotten close never lands: a bounded look
        assert valve.value("open") == 1.0
        assert not client.connected  # the server closed the connection
        with pytest.raises(ConnectionException):
            await client.read_discrete_inputs(0, count=1, device_id=5)
    assert not port_open(port)
    await server.stop()  # stopping twice is harmless


async def test_given_port_and_devices_added_while_running(
    modbus_server: Callable[..., SimModbusServer],
) -> None:
    port = free_port()
    late = SimModbusDevice(valve_profile(), unit=7)
    late.set_value("open", 1)
    async with modbus_server(port=port) as server, client_for(port) as client:
        assert server.port == port
        with pytest.raises(ModbusIOException):
            await client.read_discrete_inputs(0, count=1, device_id=7)
        server.add(late)
        assert await read_point(client, late, "open") == 1.0
        with pytest.raises(ValueError, match="unit 7"):
            server.add(SimModbusDevice(valve_profile(), unit=7))
