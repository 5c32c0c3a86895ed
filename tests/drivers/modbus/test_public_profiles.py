"""The device profiles made from public sources, round-tripped through a real Modbus server.

Each profile's device is served by one pymodbus TCP server for the whole module (a unit id
per profile). The registers are written raw, as the source documents show them (a residual
current of 123 mA is the word 123 at 0000H), never through the profile's own encoder, and
read back with the gateway's own bus client and decoder: a wrong address, scale, sign, word
order or bit in a profile shows up as a wrong reading.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pymodbus.client import AsyncModbusTcpClient

from drivers.modbus.client import BusClient
from drivers.modbus.codec import Decoded, decode, plan_reads
from drivers.modbus.profile import PROFILE_DIR, Profile, Table, builtin_profiles
from gateway.config.loading import parse_config
from gateway.config.ruleset import build_rules
from rules.model import AlarmType, DeviceRef, DeviceType
from simulator.modbus_server import SimModbusDevice, SimModbusServer
from tests.conftest import site_config

# the round trips share the module's server, so they run on the module's event loop
on_module_loop = pytest.mark.asyncio(loop_scope="module")

# profile -> (unit id on the module's server, device type, where its register map comes from)
PUBLIC = {
    "acrel_asj": (11, DeviceType.ELECTRICAL_FIRE_MONITOR, "manualshive.com"),
    "acrel_adw300": (12, DeviceType.ELECTRICAL_FIRE_MONITOR, "evcc-io/evcc"),
    "pemtech_pt495": (13, DeviceType.GAS_DETECTOR, "manualshive.com"),
    "pemtech_pt495_co": (14, DeviceType.CO_DETECTOR, "manualshive.com"),
}


class Bench:
    def __init__(self, server: SimModbusServer, bus: BusClient) -> None:
        self.server = server
        self.bus = bus

    def device(self, name: str) -> SimModbusDevice:
        return self.server.devices[PUBLIC[name][0]]

    def hold(self, name: str, address: int, *words: int) -> None:
        self.device(name).set_raw(Table.HOLDING, address, list(words))

    async def poll(self, name: str) -> Decoded:
        """One poll as the gateway does it: every planned block, then the decoder."""
        device = self.device(name)
        profile = device.profile
        results = {b: await self.bus.read(device.unit, b, retries=0) for b in plan_reads(profile)}
        return decode(profile, results)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bench() -> AsyncIterator[Bench]:
    profiles = builtin_profiles()
    devices = [SimModbusDevice(profiles[name], unit) for name, (unit, _, _) in PUBLIC.items()]
    async with SimModbusServer(devices) as server:
        bus = BusClient(
            "public-profiles",
            lambda: AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=1, retries=0),
        )
        try:
            yield Bench(server, bus)
        finally:
            bus.close()


def active(d: Decoded) -> set[str]:
    return {name for name, on in d.flags.items() if on}


# --- the files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_profile_loads_and_cites_its_source(name: str) -> None:
    profile: Profile = builtin_profiles()[name]
    _, device_type, source = PUBLIC[name]
    assert profile.device_type is device_type
    text = (PROFILE_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    # the source is named where it can be followed: a URL or a repository path at a commit
    assert source in profile.manual and source in header
    assert re.search(r"https://\S+|commit [0-9a-f]{40}", profile.manual)
    assert "assumed" in profile.manual.lower() and "unverified" in header.lower()
    assert any(p.quantity for p in profile.points), "nothing would reach the rules"


def test_acrel_arcm300t_z_is_still_marked_unverified() -> None:
    text = (PROFILE_DIR / "acrel_arcm300t_z.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Acrel")
    assert "UNVERIFIED REGISTER MAP" in text
    manual = builtin_profiles()["acrel_arcm300t_z"].manual.lower()
    assert "unverified" in manual and "no public manual found" in manual


def test_a_site_can_use_each_public_profile(tmp_path: Path) -> None:
    def dev(name: str, **extra: object) -> dict[str, object]:
        unit, device_type, _ = PUBLIC[name]
        return {
            "id": name.replace("_", "-"),
            "type": device_type.value,
            "location": "配电室",
            "transport": "modbus",
            "modbus": {"host": "192.0.2.10", "unit": unit, "profile": name},
            **extra,
        }

    meter = dev("acrel_adw300", thresholds={"overcurrent": {"alarm": "32 A"}})
    data = site_config(
        tmp_path,
        1883,
        extra_devices=[dev("acrel_asj"), meter, dev("pemtech_pt495"), dev("pemtech_pt495_co")],
    )
    config = parse_config(data)  # profiles exist and describe the configured device type
    (meter_rules,) = [
        r for r in build_rules(config) if r.ref == DeviceRef("xingfu", "acrel-adw300")
    ]
    # the meter's phase-A current feeds an overcurrent rule at the circuit's rating
    (oc,) = [t for t in meter_rules.thresholds if t.alarm is AlarmType.OVERCURRENT]
    assert oc.quantity == "current_a"
    assert [level.at for level in oc.levels] == [32.0]


# --- round trips -------------------------------------------------------------------------


@on_module_loop
async def test_acrel_asj_residual_current_and_alarm_word(bench: Bench) -> None:
    bench.hold("acrel_asj", 0x0000, 123)  # 0~30000 mA, word: 123 mA
    bench.hold("acrel_asj", 0x0008, 300, 150)  # IΔn 300 mA, prewarning 150 mA
    bench.hold("acrel_asj", 0x0010, 500)  # limit non-driving time 500 ms
    bench.hold("acrel_asj", 0x001B, 0b010)  # "010: alarm"
    bench.hold("acrel_asj", 0x001E, 0b10)  # "10: ch2"
    d = await bench.poll("acrel_asj")
    assert d.values == {None: {"residual_ma": 123.0}}
    assert d.raw["rated_residual_operating_ma"] == 300
    assert d.raw["prewarning_ma"] == 150
    assert d.raw["limit_non_driving_ms"] == 500
    assert active(d) == {"residual_alarm", "di_2"}
    assert d.faults == {}

    bench.hold("acrel_asj", 0x0000, 30000)  # the top of the range, still a plain word
    bench.hold("acrel_asj", 0x001B, 0b100)  # "100: break line": the CT is disconnected
    d = await bench.poll("acrel_asj")
    assert d.values == {None: {"residual_ma": 30000.0}}
    assert d.faults == {None: ["ct_break_line"]}

    bench.hold("acrel_asj", 0x001B, 0b001)  # "001: warning" is shown, not a fault
    d = await bench.poll("acrel_asj")
    assert active(d) == {"residual_warning", "di_2"} and d.faults == {}


@on_module_loop
async def test_acrel_adw300_phase_currents_voltages_power_and_energy(bench: Bench) -> None:
    bench.hold("acrel_adw300", 20, 2201, 2305, 2199)  # voltages x0.1 V
    bench.hold("acrel_adw300", 26, 1234, 50, 65535)  # currents x0.01 A
    bench.hold("acrel_adw300", 30, 0x0000, 0x0BB8)  # phase A 3000 W, high word first
    bench.hold("acrel_adw300", 32, 0xFFFF, 0xFE0C)  # phase B -500 W (int32)
    bench.hold("acrel_adw300", 34, 0x0001, 0x0000)  # phase C 65536 W
    bench.hold("acrel_adw300", 36, 0x0001, 0x06FC)  # total 67324 W
    bench.hold("acrel_adw300", 62, 0x0001, 0xE240)  # 123456 x0.01 = 1234.56 kWh
    bench.hold("acrel_adw300", 64, 0x0000, 0x0064)  # 1.00 kWh
    d = await bench.poll("acrel_adw300")
    assert d.values == {
        None: {"current_a": pytest.approx(12.34), "voltage_v": pytest.approx(220.1)}
    }
    assert d.raw["voltage_b"] == pytest.approx(230.5)
    assert d.raw["voltage_c"] == pytest.approx(219.9)
    assert d.raw["current_b"] == pytest.approx(0.5)
    assert d.raw["current_c"] == pytest.approx(655.35)
    assert d.raw["power_a_w"] == 3000
    assert d.raw["power_b_w"] == -500
    assert d.raw["power_c_w"] == 65536
    assert d.raw["power_total_w"] == 67324
    assert d.raw["energy_forward_kwh"] == pytest.approx(1234.56)
    assert d.raw["energy_reverse_kwh"] == pytest.approx(1.0)
    assert d.invalid == [] and d.faults == {} and d.flags == {}


@on_module_loop
async def test_pemtech_pt495_gas_reading_and_status_byte(bench: Bench) -> None:
    bench.hold("pemtech_pt495", 0, 25)  # 40001: 25 %LEL
    bench.hold("pemtech_pt495", 1, 0x0201)  # 40002: high byte 02 (LEL), low byte: alarm
    bench.hold("pemtech_pt495", 2, 20, 1, 40, 0)  # 40003-40006: AL1 20 latching, AL2 40
    d = await bench.poll("pemtech_pt495")
    assert d.values == {None: {"lel": 25.0}}
    assert active(d) == {"gas_alarm"}
    assert (d.raw["alarm_1_setpoint"], d.raw["alarm_1_latching"]) == (20, 1)
    assert (d.raw["alarm_2_setpoint"], d.raw["alarm_2_latching"]) == (40, 0)

    # the manual's own example: 257 = H2S sensor (high byte 01) with an alarm active;
    # the sensor type byte must not leak into the flags
    bench.hold("pemtech_pt495", 1, 257)
    d = await bench.poll("pemtech_pt495")
    assert active(d) == {"gas_alarm"} and d.faults == {}

    bench.hold("pemtech_pt495", 0, 0)
    bench.hold("pemtech_pt495", 1, 0x0204)  # fault
    d = await bench.poll("pemtech_pt495")
    assert d.values == {None: {"lel": 0.0}}
    assert d.faults == {None: ["sensor_fault"]}
    bench.hold("pemtech_pt495", 1, 0x0202)  # calibrating: shown, not a fault
    d = await bench.poll("pemtech_pt495")
    assert active(d) == {"calibrating"} and d.faults == {}


@on_module_loop
async def test_pemtech_pt495_co_head_reads_ppm(bench: Bench) -> None:
    bench.hold("pemtech_pt495_co", 0, 150)  # 40001: 150 ppm CO
    bench.hold("pemtech_pt495_co", 1, 0x0401)  # 40002: high byte 04 (CO), alarm
    bench.hold("pemtech_pt495_co", 2, 50, 0, 200, 1)  # AL1 50 ppm, AL2 200 ppm latching
    d = await bench.poll("pemtech_pt495_co")
    assert d.values == {None: {"co_ppm": 150.0}}
    assert active(d) == {"gas_alarm"} and d.faults == {}
    assert (d.raw["alarm_1_setpoint"], d.raw["alarm_2_setpoint"]) == (50, 200)
