"""The shipped Modbus device profiles, the read planner and the register decoder.

Pure: no Modbus server. Register values are written by hand (and checked by hand) so that a
wrong scale, sign or word order in a profile or in the decoder shows up as a wrong number.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import drivers.modbus.profile as mp
from drivers.modbus.codec import ReadBlock, decode, decode_point, plan_reads
from drivers.modbus.profile import (
    DataType,
    Point,
    Profile,
    ProfileError,
    Table,
    builtin_profiles,
    load_profile,
)
from rules.model import CommandKind, DeviceType

SHIPPED = {
    "acrel_arcm300t_z",
    "igd_toc_635_plus",
    "rotork_iq_pro",
    # from public sources, round-tripped in test_public_profiles.py
    "acrel_asj",
    "acrel_adw300",
    "pemtech_pt495",
    "pemtech_pt495_co",
}

# a minimal valid profile; the schema tests change one thing at a time
BASE: dict[str, Any] = {
    "name": "test_dev",
    "vendor": "Test",
    "model": "Dev",
    "manual": "no public manual found; layout modelled on nothing",
    "device_type": "gas_detector",
    "points": [{"name": "lel", "table": "holding", "address": 0, "quantity": "lel"}],
}


@pytest.fixture(autouse=True)
def _fresh_profile_cache() -> Iterator[None]:
    builtin_profiles.cache_clear()
    yield
    builtin_profiles.cache_clear()


Memory = Mapping[tuple[Table, int], int]


def read(profile: Profile, memory: Memory) -> dict[ReadBlock, list[int]]:
    """What a device holding `memory` answers to every planned read (unset addresses: 0)."""
    return {
        b: [memory.get((b.table, a), 0) for a in range(b.start, b.start + b.count)]
        for b in plan_reads(profile)
    }


# --- the shipped profiles ----------------------------------------------------------------


def test_every_shipped_profile_loads_and_is_named_after_its_file() -> None:
    profiles = builtin_profiles()
    assert set(profiles) == SHIPPED
    files = sorted(mp.PROFILE_DIR.glob("*.yaml"))
    assert {f.stem for f in files} == SHIPPED
    for path in files:
        assert load_profile(path).name == path.stem
        assert profiles[path.stem] == load_profile(path)


def test_every_shipped_profile_names_its_manual_and_what_is_assumed() -> None:
    for profile in builtin_profiles().values():
        text = profile.manual.lower()
        assert "assumed" in text, profile.name
        assert "found" in text, profile.name  # where the document was seen, or that it wasn't


def test_shipped_profiles_cover_their_device_type() -> None:
    p = builtin_profiles()

    efm = p["acrel_arcm300t_z"]
    assert efm.device_type is DeviceType.ELECTRICAL_FIRE_MONITOR
    quantities = {pt.quantity for pt in efm.points}
    assert {"residual_ma", "temp_c_1", "temp_c_2", "temp_c_3", "temp_c_4"} <= quantities
    assert {s.meaning for s in efm.status_bits} >= {"alarm", "fault"}
    trip = efm.command(CommandKind.TRIP)
    assert trip is not None and trip.table in (Table.COIL, Table.HOLDING)
    # Confirmed by the relay's feedback input, not by reading back the coil just written.
    assert efm.point(trip.confirm.point).table is Table.DISCRETE_INPUT

    gac = p["igd_toc_635_plus"]
    assert gac.device_type is DeviceType.GAS_ALARM_CONTROLLER
    assert gac.channels is not None and gac.channels >= 4
    for ch in range(1, gac.channels + 1):
        assert [pt.quantity for pt in gac.points if pt.channel == ch] == ["lel"]
        meanings = {s.meaning for s in gac.status_bits if s.channel == ch}
        assert meanings == {"alarm", "fault"}

    valve = p["rotork_iq_pro"]
    assert valve.device_type is DeviceType.GAS_VALVE
    (open_point,) = [pt for pt in valve.points if pt.quantity == "open"]
    for cmd, equals in ((CommandKind.CLOSE_VALVE, 0), (CommandKind.OPEN_VALVE, 1)):
        a = valve.command(cmd)
        assert a is not None
        assert (a.confirm.point, a.confirm.equals) == (open_point.name, equals)
    assert any(s.meaning == "fault" for s in valve.status_bits)
    assert any(pt.type in (DataType.U32, DataType.S32, DataType.F32) for pt in valve.points)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # holding 0..6 (residual, T1-T4, alarm word, fault word) + the trip relay feedback
        ("acrel_arcm300t_z", [(Table.HOLDING, 0, 7), (Table.DISCRETE_INPUT, 0, 1)]),
        # concentrations 30001-30008, area 1 status 32001 (reset confirmation) and status
        # words 33001-33008: far apart, three reads
        (
            "igd_toc_635_plus",
            [(Table.INPUT, 0, 8), (Table.INPUT, 2000, 1), (Table.INPUT, 3000, 8)],
        ),
        # contactor count (2 regs), valve position, discrete inputs 0..16 across the 12..15 gap
        (
            "rotork_iq_pro",
            [(Table.HOLDING, 56, 2), (Table.INPUT, 3, 1), (Table.DISCRETE_INPUT, 0, 17)],
        ),
    ],
)
def test_plan_reads_merges_each_shipped_profile(
    name: str, expected: list[tuple[Table, int, int]]
) -> None:
    profile = builtin_profiles()[name]
    blocks = plan_reads(profile)
    assert [(b.table, b.start, b.count) for b in blocks] == expected

    planned_points = [pt.name for b in blocks for pt in b.points]
    planned_flags = [s.name for b in blocks for s in b.flags]
    assert sorted(planned_points) == sorted(pt.name for pt in profile.points)
    assert sorted(planned_flags) == sorted(s.name for s in profile.status_bits)
    for b in blocks:
        for pt in b.points:
            assert pt.table is b.table
            assert b.start <= pt.address and pt.address + pt.registers <= b.start + b.count
        for s in b.flags:
            assert s.table is b.table and b.start <= s.address < b.start + b.count
        assert b.count <= (256 if b.table.is_bit_table else profile.max_block_registers)


def test_decode_acrel_block() -> None:
    profile = builtin_profiles()["acrel_arcm300t_z"]
    memory = {
        (Table.HOLDING, 0): 123,  # 123 mA
        (Table.HOLDING, 1): 253,  # 25.3 degC
        (Table.HOLDING, 2): 0xFFCE,  # -50 -> -5.0 degC
        (Table.HOLDING, 3): 600,  # 60.0 degC
        (Table.HOLDING, 4): 0,
        (Table.HOLDING, 5): 0b0_1001,  # residual current alarm, T3 alarm
        (Table.HOLDING, 6): 0b1_0010,  # T1 and T4 sensor faults
        (Table.DISCRETE_INPUT, 0): 1,
    }
    d = decode(profile, read(profile, memory))
    assert d.values == {
        None: {
            "residual_ma": 123,
            "temp_c_1": pytest.approx(25.3),
            "temp_c_2": pytest.approx(-5.0),
            "temp_c_3": pytest.approx(60.0),
            "temp_c_4": 0,
        }
    }
    assert set(d.faults) == {None}
    assert sorted(d.faults[None]) == ["temp_1_sensor_fault", "temp_4_sensor_fault"]
    active = {name for name, on in d.flags.items() if on}
    assert active == {
        "residual_current_alarm",
        "temp_3_alarm",
        "temp_1_sensor_fault",
        "temp_4_sensor_fault",
    }
    assert d.raw["trip_relay"] == 1.0
    assert d.invalid == []


def test_decode_igd_block_per_channel() -> None:
    profile = builtin_profiles()["igd_toc_635_plus"]
    raw_conc = {1: 100, 2: 350, 3: 0, 4: 1200, 5: 100, 6: 100, 7: 101, 8: 600}
    memory: dict[tuple[Table, int], int] = {(Table.INPUT, k - 1): v for k, v in raw_conc.items()}
    memory[(Table.INPUT, 3001)] = 0b11  # sensor 2: AL1 + AL2
    memory[(Table.INPUT, 3002)] = 1 << 3  # sensor 3: fault
    memory[(Table.INPUT, 3004)] = 1 << 8  # sensor 5: comms fault
    memory[(Table.INPUT, 3005)] = 1 << 4  # sensor 6: disabled
    d = decode(profile, read(profile, memory))
    expected = {1: 0.0, 2: 25.0, 3: -10.0, 4: 110.0, 5: 0.0, 6: 0.0, 7: 0.1, 8: 50.0}
    assert set(d.values) == set(expected)
    for ch, lel in expected.items():
        assert d.values[ch] == {"lel": pytest.approx(lel)}
    assert d.faults == {3: ["ch3_fault"], 5: ["ch5_comms_fault"], 6: ["ch6_disabled"]}
    assert d.flags["ch2_al1"] and d.flags["ch2_al2"] and not d.flags["ch2_al3"]
    assert {n for n, on in d.flags.items() if on} == {
        "ch2_al1",
        "ch2_al2",
        "ch3_fault",
        "ch5_comms_fault",
        "ch6_disabled",
    }


def test_decode_rotork_block_closed_and_faulted() -> None:
    profile = builtin_profiles()["rotork_iq_pro"]
    memory = {
        (Table.HOLDING, 56): 0x86A0,  # low-order word first: 0x0001_86A0 = 100000
        (Table.HOLDING, 57): 0x0001,
        (Table.INPUT, 3): 500,  # 50.0 %
        (Table.DISCRETE_INPUT, 1): 1,  # closed limit
        (Table.DISCRETE_INPUT, 8): 1,  # thermostat tripped
        (Table.DISCRETE_INPUT, 16): 1,  # battery low
    }
    d = decode(profile, read(profile, memory))
    assert d.values == {None: {"open": 0.0}}
    assert d.raw["close_contactor_count"] == 100_000
    assert d.raw["valve_position_pct"] == pytest.approx(50.0)
    assert d.raw["open_limit"] == 0.0
    assert d.faults == {None: ["thermostat_tripped"]}
    assert d.flags["battery_low"] and not d.flags["valve_jammed"]


def test_decode_rotork_block_open() -> None:
    profile = builtin_profiles()["rotork_iq_pro"]
    memory = {(Table.DISCRETE_INPUT, 2): 1, (Table.DISCRETE_INPUT, 5): 1}  # open limit, remote
    d = decode(profile, read(profile, memory))
    assert d.values == {None: {"open": 1.0}}
    assert d.raw["open_limit"] == 1.0
    assert d.faults == {}
    assert d.flags["remote_selected"]


# --- decode_point ------------------------------------------------------------------------


def pt(type_: str, *, table: str = "holding", **kw: Any) -> Point:
    return Point.model_validate({"name": "p", "table": table, "address": 10, "type": type_, **kw})


def words_of(fmt: str, value: float, order: str) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(fmt, value))
    return [hi, lo] if order == "big" else [lo, hi]


def test_words_of_matches_hand_computed_registers() -> None:
    assert words_of(">f", 3.5, "big") == [0x4060, 0x0000]
    assert words_of(">f", 3.5, "little") == [0x0000, 0x4060]
    assert words_of(">i", -2, "big") == [0xFFFF, 0xFFFE]
    assert words_of(">I", 74565, "little") == [0x2345, 0x0001]


@pytest.mark.parametrize(
    ("type_", "words", "kw", "expected"),
    [
        ("u16", [0], {}, 0.0),
        ("u16", [0xFFFF], {}, 65535.0),
        ("u16", [1234], {"scale": 0.1, "offset": -10}, 113.4),
        ("s16", [0xFFFF], {}, -1.0),
        ("s16", [0x8000], {}, -32768.0),
        ("s16", [0xFFF6], {"scale": 0.1}, -1.0),  # -10 * 0.1
        ("s16", [0xFF38], {"scale": 0.5, "offset": 100}, 0.0),  # -200 * 0.5 + 100
        ("s16", [0x7FFF], {}, 32767.0),
    ],
)
def test_decode_point_16_bit(
    type_: str, words: list[int], kw: dict[str, float], expected: float
) -> None:
    assert decode_point(pt(type_, **kw), words, "big") == pytest.approx(expected)


@pytest.mark.parametrize("order", ["big", "little"])
@pytest.mark.parametrize(
    ("type_", "hi_lo", "kw", "expected"),
    [
        ("u32", (0x0001, 0x2345), {}, 74565.0),
        ("u32", (0x0001, 0x2345), {"scale": 0.01, "offset": 1}, 746.65),
        ("u32", (0xFFFF, 0xFFFF), {}, 4294967295.0),
        ("s32", (0xFFFF, 0xFFFE), {}, -2.0),
        ("s32", (0xFFFF, 0xFFFE), {"scale": 0.5, "offset": 10}, 9.0),
        ("s32", (0x8000, 0x0000), {}, -2147483648.0),
        ("s32", (0x0001, 0x0000), {"scale": 0.001}, 65.536),
        ("f32", (0x4060, 0x0000), {}, 3.5),
        ("f32", (0x4060, 0x0000), {"scale": 2, "offset": -1}, 6.0),
        ("f32", (0xBFC0, 0x0000), {"scale": 10}, -15.0),  # -1.5
        ("f32", (0x3F80, 0x0000), {"offset": 0.25}, 1.25),
    ],
)
def test_decode_point_32_bit_both_word_orders(
    order: str, type_: str, hi_lo: tuple[int, int], kw: dict[str, float], expected: float
) -> None:
    hi, lo = hi_lo
    words = [hi, lo] if order == "big" else [lo, hi]
    # the point's own word order wins over the profile default ...
    other = "little" if order == "big" else "big"
    explicit = pt(type_, word_order=order, **kw)
    assert decode_point(explicit, words, other) == pytest.approx(expected)
    # ... and without one the profile default applies
    assert decode_point(pt(type_, **kw), words, order) == pytest.approx(expected)
    # the same words read in the other order are a different number
    if hi != lo:
        assert decode_point(pt(type_, **kw), words, other) != pytest.approx(expected)


@pytest.mark.parametrize("hi_lo", [(0x7FC0, 0x0000), (0x7F80, 0x0000), (0xFF80, 0x0000)])
def test_decode_point_rejects_nan_and_infinity(hi_lo: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        decode_point(pt("f32"), list(hi_lo), "big")


def test_decode_marks_an_undecodable_point_invalid() -> None:
    profile = Profile.model_validate(
        {
            **BASE,
            "points": [
                {"name": "f", "table": "holding", "address": 0, "type": "f32"},
                {"name": "t", "table": "holding", "address": 2, "quantity": "temp_c"},
            ],
        }
    )
    (block,) = plan_reads(profile)
    d = decode(profile, {block: [0x7FC0, 0x0000, 21]})
    assert d.invalid == ["f"]
    assert "f" not in d.raw
    assert d.values == {None: {"temp_c": 21.0}}


@pytest.mark.parametrize(
    ("bit", "invert", "expected"),
    [(1, False, 1.0), (0, False, 0.0), (1, True, 0.0), (0, True, 1.0)],
)
def test_decode_point_bool(bit: int, invert: bool, expected: float) -> None:
    p = pt("bool", table="discrete_input", invert=invert)
    assert decode_point(p, [bit], "big") == expected
    assert decode_point(p, [bool(bit)], "big") == expected  # pymodbus gives bools for bits


def test_plan_reads_splits_on_gap_and_block_size() -> None:
    def profile(**kw: Any) -> Profile:
        points = [
            {"name": "a", "table": "holding", "address": 0},
            {"name": "b", "table": "holding", "address": 1, "type": "u32"},
            {"name": "c", "table": "holding", "address": 12},  # gap of 9 after b (1..2)
        ]
        return Profile.model_validate({**BASE, "points": points, **kw})

    spans = [(b.start, b.count) for b in plan_reads(profile())]
    assert spans == [(0, 3), (12, 1)]
    assert [(b.start, b.count) for b in plan_reads(profile(max_gap=9))] == [(0, 13)]
    assert [(b.start, b.count) for b in plan_reads(profile(max_block_registers=2))] == [
        (0, 1),
        (1, 2),
        (12, 1),
    ]


# --- schema rejections -------------------------------------------------------------------


def write(tmp_path: Path, data: dict[str, Any], stem: str | None = None) -> Path:
    path = tmp_path / f"{stem or data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def with_(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


POINT = {"name": "x", "table": "holding", "address": 5}
FLAG = {"name": "f", "table": "holding", "address": 9, "bit": 0, "meaning": "fault"}
LEL1 = {"name": "g1", "table": "input", "address": 0, "quantity": "lel", "channel": 1}
CLOSE = {"cmd": "close_valve", "table": "coil", "address": 0, "value": 1}

REJECTIONS = [
    (
        "bool in a register table",
        with_(points=[{**POINT, "type": "bool"}]),
        "x: a register point needs a numeric type",
    ),
    (
        "numeric type in a coil table",
        with_(points=[{**POINT, "table": "coil", "type": "u16"}]),
        "x: coil points are bool, not u16",
    ),
    (
        "numeric type in a discrete input table",
        with_(points=[{**POINT, "table": "discrete_input", "type": "f32"}]),
        "x: discrete_input points are bool, not f32",
    ),
    (
        "unknown quantity",
        with_(points=[{**POINT, "quantity": "methane_ppm"}]),
        "x: unknown quantity 'methane_ppm'",
    ),
    (
        "temperature channel beyond the canonical ones",
        with_(points=[{**POINT, "quantity": "temp_c_17"}]),
        "x: unknown quantity 'temp_c_17'",
    ),
    (
        "duplicate point names",
        with_(points=[POINT, {**POINT, "address": 6}]),
        "duplicate point names: ['x']",
    ),
    (
        "a point and a flag with the same name",
        with_(status_bits=[{**FLAG, "name": "lel"}]),
        "duplicate point names: ['lel']",
    ),
    (
        "command confirmed by a nonexistent point",
        with_(commands=[{**CLOSE, "confirm": {"point": "valve_open", "equals": 0}}]),
        "close_valve: confirmation point 'valve_open' is not a point",
    ),
    (
        "command confirmed by a status bit",
        with_(
            status_bits=[FLAG],
            commands=[{**CLOSE, "confirm": {"point": "f", "equals": 0}}],
        ),
        "close_valve: confirmation point 'f' is not a point",
    ),
    (
        "coil command writing 2",
        with_(commands=[{**CLOSE, "value": 2, "confirm": {"point": "lel", "equals": 0}}]),
        "close_valve: a coil takes 0 or 1",
    ),
    (
        "a bit number on a coil flag",
        with_(status_bits=[{**FLAG, "table": "coil", "bit": 3}]),
        "f: coils and discrete inputs have no bit number",
    ),
    (
        "a register flag without bit",
        with_(status_bits=[{k: v for k, v in FLAG.items() if k != "bit"}]),
        "f: a flag in a register needs its bit number",
    ),
    (
        "bit 16 in a 16-bit register",
        with_(status_bits=[{**FLAG, "bit": 16}]),
        "less than or equal to 15",
    ),
    (
        "channel beyond `channels`",
        with_(channels=1, points=[LEL1, {**LEL1, "name": "g2", "address": 1, "channel": 2}]),
        "g2: channel 2 but the profile has 1",
    ),
    (
        "a channel on a profile without channels",
        with_(points=[LEL1]),
        "g1: channel 1 but the profile has None",
    ),
    (
        "a channel with no measured point",
        with_(
            channels=2,
            points=[LEL1, {"name": "raw2", "table": "input", "address": 1, "channel": 2}],
        ),
        "channel 2 has no measured point",
    ),
    ("scale 0", with_(points=[{**POINT, "scale": 0}]), "x: scale 0 would turn every reading"),
    (
        "infinite scale",
        with_(points=[{**POINT, "scale": math.inf}]),
        "points.0.scale: Input should be a finite number",
    ),
    (
        "NaN offset",
        with_(points=[{**POINT, "offset": math.nan}]),
        "points.0.offset: Input should be a finite number",
    ),
    (
        "a 32-bit point wider than one read",
        with_(max_block_registers=1, points=[{**POINT, "type": "f32"}]),
        "x: 2 registers do not fit in one read of max_block_registers=1",
    ),
    (
        "a 32-bit point at address 65535",
        with_(points=[{**POINT, "address": 65535, "type": "s32"}]),
        "x: runs past the last address",
    ),
    (
        "an unknown key",
        with_(points=[{**POINT, "scaling": 2}]),
        "Extra inputs are not permitted",
    ),
    ("no points at all", with_(points=[]), "a profile needs at least one point or status bit"),
]


@pytest.mark.parametrize(
    ("data", "message"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_schema_rejects_with_a_clear_message(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ProfileError) as exc:
        load_profile(path)
    text = str(exc.value)
    assert text.startswith(f"{path}:")
    assert message in text


def test_a_32_bit_point_ending_on_the_last_address_is_accepted(tmp_path: Path) -> None:
    profile = load_profile(
        write(tmp_path, with_(points=[{**POINT, "address": 65534, "type": "u32"}]))
    )
    assert profile.points[0].registers == 2


def test_load_profile_reports_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"bad\.yaml"):
        load_profile(bad)
    with pytest.raises(ProfileError, match=r"missing\.yaml"):
        load_profile(tmp_path / "missing.yaml")


def test_builtin_profiles_rejects_a_file_named_differently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write(tmp_path, BASE)
    monkeypatch.setattr(mp, "PROFILE_DIR", tmp_path)
    assert set(builtin_profiles()) == {"test_dev"}  # the same directory, correctly named

    good.rename(tmp_path / "other_name.yaml")
    builtin_profiles.cache_clear()
    with pytest.raises(ProfileError, match="name 'test_dev' must match the file name"):
        builtin_profiles()
    # the file itself is a valid profile: only the directory load checks the name
    assert load_profile(tmp_path / "other_name.yaml").name == "test_dev"


def test_builtin_profiles_is_a_hard_error_on_one_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, BASE)
    write(tmp_path, with_(name="broken", points=[{**POINT, "scale": 0}]))
    monkeypatch.setattr(mp, "PROFILE_DIR", tmp_path)
    with pytest.raises(ProfileError, match=r"broken\.yaml"):
        builtin_profiles()


def test_hand_made_words_round_trip_through_struct() -> None:
    # guards the helpers above: 3.5 is 0x4060_0000, a NaN really is not finite
    assert struct.unpack(">f", struct.pack(">HH", 0x4060, 0))[0] == 3.5
    assert math.isnan(struct.unpack(">f", struct.pack(">HH", 0x7FC0, 0))[0])
