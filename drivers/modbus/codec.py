"""Pure Modbus helpers: which blocks to read, and what the registers in them mean.

`plan_reads` merges points that lie close together in one table into one request (a gap
of a few unused registers costs less than another round trip on a 9600-baud bus).
`decode` turns the register values of those blocks into quantities and flags. Nothing
here does I/O, so both are tested with plain lists.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from drivers.modbus.profile import DataType, Point, Profile, StatusBit, Table, WordOrder

MAX_BITS_PER_READ = 256  # far below the 2000 the protocol allows; keeps frames short


@dataclass(frozen=True, slots=True)
class ReadBlock:
    table: Table
    start: int
    count: int  # registers, or bits for coil/discrete tables
    points: tuple[Point, ...] = ()
    flags: tuple[StatusBit, ...] = ()


def _span(item: Point | StatusBit) -> tuple[int, int]:
    size = item.registers if isinstance(item, Point) else 1
    return item.address, item.address + size - 1


def plan_reads(profile: Profile) -> tuple[ReadBlock, ...]:
    blocks: list[ReadBlock] = []
    for table in Table:
        items: list[Point | StatusBit] = [p for p in profile.points if p.table is table]
        items += [s for s in profile.status_bits if s.table is table]
        if not items:
            continue
        limit = MAX_BITS_PER_READ if table.is_bit_table else profile.max_block_registers
        items.sort(key=_span)
        current: list[Point | StatusBit] = []
        start = end = 0
        for item in items:
            lo, hi = _span(item)
            if current and lo - end - 1 <= profile.max_gap and max(end, hi) - start + 1 <= limit:
                current.append(item)
                end = max(end, hi)
                continue
            if current:
                blocks.append(_block(table, start, end, current))
            current, start, end = [item], lo, hi
        blocks.append(_block(table, start, end, current))
    return tuple(blocks)


def _block(table: Table, start: int, end: int, items: list[Point | StatusBit]) -> ReadBlock:
    return ReadBlock(
        table,
        start,
        end - start + 1,
        tuple(i for i in items if isinstance(i, Point)),
        tuple(i for i in items if isinstance(i, StatusBit)),
    )


def decode_point(point: Point, words: Sequence[int], default_order: WordOrder) -> float:
    """`words`: the point's registers (or its one bit) as read. Raises ValueError on NaN/inf."""
    t = point.type
    if t is DataType.BOOL:
        raw = 1.0 if words[0] else 0.0
        return 1.0 - raw if point.invert else raw
    if t is DataType.U16:
        raw_n: float = words[0] & 0xFFFF
    elif t is DataType.S16:
        raw_n = struct.unpack(">h", struct.pack(">H", words[0] & 0xFFFF))[0]
    else:
        order = point.word_order or default_order
        hi, lo = (words[0], words[1]) if order == "big" else (words[1], words[0])
        packed = struct.pack(">HH", hi & 0xFFFF, lo & 0xFFFF)
        fmt = {DataType.U32: ">I", DataType.S32: ">i", DataType.F32: ">f"}[t]
        raw_n = struct.unpack(fmt, packed)[0]
        if not math.isfinite(raw_n):
            raise ValueError(f"{point.name}: register value is not a finite number")
    return raw_n * point.scale + point.offset


@dataclass(slots=True)
class Decoded:
    """One poll's meaning, split by channel (None: the device itself)."""

    values: dict[int | None, dict[str, float]] = field(default_factory=dict)
    faults: dict[int | None, list[str]] = field(default_factory=dict)  # active fault flags
    flags: dict[str, bool] = field(default_factory=dict)  # every status bit, by name
    raw: dict[str, float] = field(default_factory=dict)  # every point, by name
    invalid: list[str] = field(default_factory=list)  # points that did not decode


def decode(profile: Profile, results: Mapping[ReadBlock, Sequence[int]]) -> Decoded:
    """`results`: for each block, the values read (registers or bits), `block.count` long."""
    out = Decoded()
    for block, values in results.items():
        for p in block.points:
            i = p.address - block.start
            try:
                value = decode_point(p, values[i : i + p.registers], profile.word_order)
            except ValueError:
                out.invalid.append(p.name)
                continue
            out.raw[p.name] = value
            if p.quantity is not None:
                out.values.setdefault(p.channel, {})[p.quantity] = value
        for s in block.flags:
            word = values[s.address - block.start]
            bit = bool(word) if s.bit is None else bool((word >> s.bit) & 1)
            active = bit == bool(s.active_when)
            out.flags[s.name] = active
            if s.meaning == "fault" and active:
                out.faults.setdefault(s.channel, []).append(s.name)
    return out
