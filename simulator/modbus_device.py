"""Simulated Modbus field devices: a register image built from the gateway's own profile.

The gateway's Modbus driver must be tested against something that behaves like the devices
it will meet: a gas detector whose concentration sits in an input register with a scale, an
electrical-fire monitor with signed temperatures and 32-bit currents in either word order, a
shut-off valve that takes a coil write and only later reports that it has closed. Each
`SimModbusDevice` is built from the same `drivers.modbus.profile.Profile` the gateway reads,
so a test sets *engineering* values (`set_value("temp_1", -12.5)`) and the device encodes
them into registers exactly as the profile says the real one does (`encode_point`, the
inverse of the driver's `decode_point`); the gateway then reads them over a real TCP
connection (`modbus_server`) and has to decode them back.

What a device does, like a real one:

* Answers reads of the addresses its profile defines, and of the unused addresses between
  them (the gateway reads across small gaps); anything outside that range is an
  IllegalAddress exception, which catches a wrong address in a profile or a driver.
* Accepts writes to its coils and holding registers and records each one. A write that
  matches one of the profile's commands starts the actuator: `travel_s` later the command's
  confirmation point takes the confirmed value (a valve's `open` goes to 0, a breaker's
  state to tripped). A `stuck` device accepts the write and never moves.
* Fails like a real one: `DeviceMode.SILENT` does not answer at all (a dead device or a
  broken RS-485 line behind a gateway: the client times out), `DeviceMode.EXCEPTION`
  answers every request with a Modbus exception response (`exception_code`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pymodbus.constants import ExcCodes

from drivers.modbus.codec import decode_point
from drivers.modbus.profile import DataType, Point, Profile, StatusBit, Table, WordOrder

log = logging.getLogger(__name__)

_INT_RANGE: dict[DataType, tuple[int, int, str]] = {
    DataType.U16: (0, 0xFFFF, ">H"),
    DataType.S16: (-0x8000, 0x7FFF, ">h"),
    DataType.U32: (0, 0xFFFF_FFFF, ">I"),
    DataType.S32: (-0x8000_0000, 0x7FFF_FFFF, ">i"),
}


def encode_point(point: Point, value: float, default_order: WordOrder) -> list[int]:
    """The inverse of `decode_point`: the registers (or the one bit) that read as `value`.

    Integer types take the nearest raw value, `(value - offset) / scale` rounded; a raw
    value outside the type's range is a ValueError. f32 is packed as IEEE 754 single
    precision and may be NaN or infinite (a broken sensor: the gateway must reject it).
    """
    if point.type is DataType.BOOL:
        if value not in (0, 1):
            raise ValueError(f"{point.name}: a bool point is 0 or 1, not {value}")
        bit = int(value) ^ int(point.invert)
        return [bit]
    raw = (value - point.offset) / point.scale
    if point.type is DataType.F32:
        try:
            packed = struct.pack(">f", raw)
        except OverflowError:
            raise ValueError(f"{point.name}: {value} does not fit an f32") from None
    else:
        lo, hi, fmt = _INT_RANGE[point.type]
        if not math.isfinite(raw):
            raise ValueError(f"{point.name}: {value} is not a number")
        n = round(raw)
        if not lo <= n <= hi:
            raise ValueError(f"{point.name}: {value} is raw {n}, outside {point.type} range")
        packed = struct.pack(fmt, n)
    if len(packed) == 2:
        return [struct.unpack(">H", packed)[0]]
    high, low = struct.unpack(">HH", packed)
    order = point.word_order or default_order
    return [high, low] if order == "big" else [low, high]


class DeviceMode(StrEnum):
    NORMAL = "normal"
    SILENT = "silent"  # no response at all: the client times out
    EXCEPTION = "exception"  # every request answered with `exception_code`


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One coil or register the device accepted a write to (a multiple write gives several)."""

    table: Table
    address: int
    value: int  # coils: 0 or 1
    at: float  # time.monotonic()


class SimModbusDevice:
    """One Modbus unit whose register map is `profile`; values are set in engineering units.

    All addresses start at zero (status bits inactive, so a device starts healthy); set the
    values a test needs. Methods that change the image may be called at any time, also while
    a server is serving the device; they must be called from the server's event loop thread.
    """

    def __init__(
        self,
        profile: Profile,
        unit: int,
        *,
        travel_s: float = 1.0,
        stuck: bool = False,
        mode: DeviceMode = DeviceMode.NORMAL,
        exception_code: ExcCodes = ExcCodes.DEVICE_FAILURE,
    ) -> None:
        if not 0 <= unit <= 255:
            raise ValueError(f"unit id {unit} is outside 0..255")
        self.profile = profile
        self.unit = unit
        self.travel_s = travel_s
        self.stuck = stuck
        self.mode = mode
        self.exception_code = exception_code
        self.writes: list[WriteRecord] = []
        self._image: dict[Table, dict[int, int]] = {t: {} for t in Table}
        self._spans: dict[Table, tuple[int, int]] = _spans(profile)
        self._points = {p.name: p for p in profile.points}
        self._flags = {s.name: s for s in profile.status_bits}
        self._moving: dict[str, asyncio.TimerHandle] = {}  # confirmation point -> arrival
        for flag in profile.status_bits:
            self.set_flag(flag.name, False)

    def __repr__(self) -> str:
        return f"SimModbusDevice({self.profile.name!r}, unit={self.unit}, mode={self.mode})"

    # --- engineering values -------------------------------------------------------------

    def point(self, name: str) -> Point:
        try:
            return self._points[name]
        except KeyError:
            raise KeyError(f"{self.profile.name} has no point {name!r}") from None

    def set_value(self, point_name: str, value: float) -> None:
        """Encode `value` (engineering units) into the point's registers or bit."""
        p = self.point(point_name)
        self.set_raw(p.table, p.address, encode_point(p, value, self.profile.word_order))

    def value(self, point_name: str) -> float:
        """The point's value as the gateway will decode it (ValueError on NaN/inf)."""
        p = self.point(point_name)
        return decode_point(p, self.raw(p.table, p.address, p.registers), self.profile.word_order)

    def set_quantity(self, quantity: str, value: float, channel: int | None = None) -> None:
        """Set every point that feeds `quantity` on `channel` (None: the device itself)."""
        names = [
            p.name for p in self.profile.points if p.quantity == quantity and p.channel == channel
        ]
        if not names:
            where = "" if channel is None else f" on channel {channel}"
            raise KeyError(f"{self.profile.name} has no point for {quantity!r}{where}")
        for name in names:
            self.set_value(name, value)

    def set_flag(self, name: str, active: bool) -> None:
        """Raise or clear a status bit, honouring its `bit` and `active_when`."""
        s = self._status_bit(name)
        level = int(active) if s.active_when == 1 else int(not active)
        if s.bit is None:
            self.set_raw(s.table, s.address, [level])
            return
        word = self.raw(s.table, s.address, 1)[0]
        word = (word | (1 << s.bit)) if level else (word & ~(1 << s.bit))
        self.set_raw(s.table, s.address, [word])

    def flag(self, name: str) -> bool:
        s = self._status_bit(name)
        word = self.raw(s.table, s.address, 1)[0]
        level = word if s.bit is None else (word >> s.bit) & 1
        return bool(level) == bool(s.active_when)

    def _status_bit(self, name: str) -> StatusBit:
        try:
            return self._flags[name]
        except KeyError:
            raise KeyError(f"{self.profile.name} has no status bit {name!r}") from None

    # --- raw image ----------------------------------------------------------------------

    def raw(self, table: Table, address: int, count: int = 1) -> list[int]:
        """Registers (or bits, as 0/1) as they are on the wire; unset addresses read 0."""
        image = self._image[table]
        return [image.get(a, 0) for a in range(address, address + count)]

    def set_raw(self, table: Table, address: int, values: Sequence[int]) -> None:
        """Put wire values into the image, unchecked against the profile (for odd cases)."""
        limit = 1 if table.is_bit_table else 0xFFFF
        for i, v in enumerate(values):
            if not 0 <= v <= limit:
                raise ValueError(f"{table} {address + i}: {v} does not fit")
            self._image[table][address + i] = v

    # --- the wire side, called by the server --------------------------------------------

    def _check_span(self, table: Table, address: int, count: int) -> ExcCodes | None:
        span = self._spans.get(table)
        if span is None or address < span[0] or address + count - 1 > span[1]:
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    def handle_read(self, table: Table, address: int, count: int) -> list[int] | ExcCodes:
        """Answer a read request (normal or exception mode; silence is the server's job)."""
        if self.mode is DeviceMode.EXCEPTION:
            return self.exception_code
        if (exc := self._check_span(table, address, count)) is not None:
            return exc
        return self.raw(table, address, count)

    def handle_write(self, table: Table, address: int, values: Sequence[int]) -> ExcCodes | None:
        """Apply a write request, record it and start any actuation it commands."""
        if self.mode is DeviceMode.EXCEPTION:
            return self.exception_code
        if table not in (Table.COIL, Table.HOLDING):
            return ExcCodes.ILLEGAL_FUNCTION
        if (exc := self._check_span(table, address, len(values))) is not None:
            return exc
        words = [int(bool(v)) if table is Table.COIL else int(v) for v in values]
        self.set_raw(table, address, words)
        now = time.monotonic()
        for i, v in enumerate(words):
            self.writes.append(WriteRecord(table, address + i, v, now))
            log.debug("%r: write %s %d = %d", self, table, address + i, v)
            for a in self.profile.commands:
                if a.table is table and a.address == address + i and a.value == v:
                    self._actuate(a.cmd, a.confirm.point, a.confirm.equals)
        return None

    def _actuate(self, cmd: str, point: str, target: float) -> None:
        if self.stuck:
            log.info("%r: %s accepted, actuator stuck", self, cmd)
            return
        if (pending := self._moving.pop(point, None)) is not None:
            pending.cancel()  # a new command reverses the one still travelling
        loop = asyncio.get_running_loop()
        self._moving[point] = loop.call_later(self.travel_s, self._arrive, cmd, point, target)

    def _arrive(self, cmd: str, point: str, target: float) -> None:
        self._moving.pop(point, None)
        self.set_value(point, target)
        log.info("%r: %s done, %s = %s", self, cmd, point, target)

    @property
    def moving(self) -> bool:
        """An actuation has been commanded and has not arrived yet."""
        return bool(self._moving)

    def cancel_motion(self) -> None:
        """Forget actuations still travelling (the server calls this when it stops)."""
        for handle in self._moving.values():
            handle.cancel()
        self._moving.clear()


def _spans(profile: Profile) -> dict[Table, tuple[int, int]]:
    """Per table, the lowest and highest address the profile uses: what the device answers."""
    spans: dict[Table, tuple[int, int]] = {}

    def add(table: Table, lo: int, hi: int) -> None:
        old = spans.get(table)
        spans[table] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    for p in profile.points:
        add(p.table, p.address, p.address + p.registers - 1)
    for s in profile.status_bits:
        add(s.table, s.address, s.address)
    for a in profile.commands:
        add(a.table, a.address, a.address)
    return spans
