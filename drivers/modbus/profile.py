"""Modbus device profiles: what each register of a device model means. Data, not code.

A profile file (`drivers/modbus/profiles/<vendor>_<model>.yaml`) describes a device *model*; the
site configuration says where an *instance* is (host or serial port, unit id) and how
often to poll it. Profiles are parsed once, at load, into frozen pydantic models and
checked thoroughly: register count against data type, unique names, known quantities,
bit numbers inside their register, commands confirmed by a point that exists.

Addresses are protocol (PDU) addresses, 0-based, as sent on the wire; vendor manuals
that number registers from 1 or write 4xxxx must be converted when the profile is written.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rules.model import CommandKind, DeviceType, quantity_base


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"

    @property
    def is_bit_table(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)


class DataType(StrEnum):
    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    F32 = "f32"
    BOOL = "bool"


REGISTER_COUNT = {
    DataType.U16: 1,
    DataType.S16: 1,
    DataType.U32: 2,
    DataType.S32: 2,
    DataType.F32: 2,
    DataType.BOOL: 1,
}

WordOrder = Literal["big", "little"]  # big: high word first (the Modbus convention)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(_Frozen):
    """A measured value: `value = raw * scale + offset`, fed to the engine as `quantity`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    table: Table
    address: int = Field(ge=0, le=65535)
    type: DataType = DataType.U16
    word_order: WordOrder | None = None  # None: the profile's default
    scale: float = Field(1.0, allow_inf_nan=False)
    offset: float = Field(0.0, allow_inf_nan=False)
    quantity: str | None = None  # canonical quantity (DESIGN section 5); None: read, not fed
    channel: int | None = Field(None, ge=1, le=64)  # controllers: the detector channel
    invert: bool = False  # bool points: 1 on the wire means 0 (e.g. a "closed" contact -> open)

    @property
    def registers(self) -> int:
        return REGISTER_COUNT[self.type]

    @model_validator(mode="after")
    def _consistent(self) -> Point:
        if self.table.is_bit_table and self.type is not DataType.BOOL:
            raise ValueError(f"{self.name}: {self.table} points are bool, not {self.type}")
        if not self.table.is_bit_table and self.type is DataType.BOOL:
            raise ValueError(
                f"{self.name}: a register point needs a numeric type (use a status bit for flags)"
            )
        if self.invert and self.type is not DataType.BOOL:
            raise ValueError(f"{self.name}: invert applies to bool points only")
        if self.quantity is not None and quantity_base(self.quantity) is None:
            raise ValueError(f"{self.name}: unknown quantity {self.quantity!r}")
        if self.address + self.registers - 1 > 65535:
            raise ValueError(f"{self.name}: runs past the last address")
        if self.scale == 0:
            raise ValueError(f"{self.name}: scale 0 would turn every reading into the offset")
        return self


class StatusBit(_Frozen):
    """A flag the device sets about itself. `fault` flags raise device_fault while set."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    table: Table
    address: int = Field(ge=0, le=65535)
    bit: int | None = Field(None, ge=0, le=15)  # register tables: which bit (0 = least significant)
    meaning: Literal["fault", "alarm", "info"]
    active_when: Literal[0, 1] = 1
    channel: int | None = Field(None, ge=1, le=64)

    @model_validator(mode="after")
    def _consistent(self) -> StatusBit:
        if self.table.is_bit_table and self.bit is not None:
            raise ValueError(f"{self.name}: coils and discrete inputs have no bit number")
        if not self.table.is_bit_table and self.bit is None:
            raise ValueError(f"{self.name}: a flag in a register needs its bit number")
        return self


class Confirmation(_Frozen):
    point: str  # a point of this profile
    equals: float
    timeout_s: float = Field(10.0, gt=0)


class Actuation(_Frozen):
    """How a command is carried out: one write, then confirmed by reading a point back."""

    cmd: CommandKind
    table: Literal[Table.COIL, Table.HOLDING]
    address: int = Field(ge=0, le=65535)
    value: int = Field(ge=0, le=65535)  # coil: 0/1; holding: the register value to write
    confirm: Confirmation


class Profile(_Frozen):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    vendor: str
    model: str
    manual: str = Field(min_length=10)  # the document and section the register map follows
    device_type: DeviceType
    word_order: WordOrder = "big"
    max_block_registers: int = Field(64, ge=1, le=125)  # Modbus allows 125 per read
    max_gap: int = Field(8, ge=0, le=64)  # read across a gap this small rather than split
    channels: int | None = Field(None, ge=1, le=64)
    points: tuple[Point, ...] = ()
    status_bits: tuple[StatusBit, ...] = ()
    commands: tuple[Actuation, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        names = [p.name for p in self.points] + [s.name for s in self.status_bits]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate point names: {dupes}")
        if not self.points and not self.status_bits:
            raise ValueError("a profile needs at least one point or status bit")
        for p in self.points:
            if not p.table.is_bit_table and p.registers > self.max_block_registers:
                raise ValueError(
                    f"{p.name}: {p.registers} registers do not fit in one read of "
                    f"max_block_registers={self.max_block_registers}"
                )
        by_name = {p.name: p for p in self.points}
        for a in self.commands:
            if a.confirm.point not in by_name:
                raise ValueError(f"{a.cmd}: confirmation point {a.confirm.point!r} is not a point")
            if a.table is Table.COIL and a.value not in (0, 1):
                raise ValueError(f"{a.cmd}: a coil takes 0 or 1")
        cmds = [a.cmd for a in self.commands]
        if len(set(cmds)) != len(cmds):
            raise ValueError("a command may be defined once")
        items: list[Point | StatusBit] = [*self.points, *self.status_bits]
        for item in items:
            if item.channel is not None and (self.channels is None or item.channel > self.channels):
                raise ValueError(
                    f"{item.name}: channel {item.channel} but the profile has {self.channels}"
                )
        if self.channels is not None:
            for ch in range(1, self.channels + 1):
                if not any(p.channel == ch and p.quantity for p in self.points):
                    raise ValueError(f"channel {ch} has no measured point")
        return self

    def command(self, cmd: CommandKind) -> Actuation | None:
        return next((a for a in self.commands if a.cmd is cmd), None)

    def point(self, name: str) -> Point:
        return next(p for p in self.points if p.name == name)


class ProfileError(Exception):
    pass


PROFILE_DIR = Path(str(resources.files("drivers.modbus").joinpath("profiles")))


def load_profile(path: Path) -> Profile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or 'profile'}: {e['msg']}" for e in exc.errors()
        ]
        raise ProfileError(f"{path}:\n  " + "\n  ".join(lines)) from None


def _load_dir(directory: Path) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.yaml")):
        profile = load_profile(path)
        if profile.name != path.stem:
            raise ProfileError(f"{path}: name {profile.name!r} must match the file name")
        profiles[profile.name] = profile
    return profiles


@cache
def builtin_profiles() -> dict[str, Profile]:
    """Every profile shipped in drivers/modbus/profiles/, by name. A bad file is a hard error."""
    return _load_dir(PROFILE_DIR)


def all_profiles(extra_dirs: tuple[Path, ...] = ()) -> dict[str, Profile]:
    """Built-in profiles plus those in `extra_dirs`; a name defined twice is an error."""
    profiles = dict(builtin_profiles())
    for directory in extra_dirs:
        if not directory.is_dir():
            raise ProfileError(f"{directory}: not a directory")
        for name, profile in _load_dir(directory).items():
            if name in profiles:
                raise ProfileError(f"{directory}: profile {name!r} is already defined")
            profiles[name] = profile
    return profiles
