"""Payload mappings: a vendor's JSON shape onto the contract (DESIGN section 5). Data, not code.

A 4G/NB-IoT detector posts its vendor's JSON (`{"payload": {"gas_value": 23}}`, or
`{"data": {"gas": 23}, "time": "2026-12-01 08:00:00"}`); a mapping names, by paths into that
JSON, which field is which quantity (with scale and offset), where the device's time is and in
what format, which values of a field are events and which say online or offline. Mapping files
(`drivers/mappings/<name>.yaml`, beside the Modbus profiles) and mappings written in the
configuration are parsed once, at load, into frozen pydantic models and checked like the
profiles: paths that parse, known quantities and events, no quantity twice.

Decoding with a mapping is a pure function, bytes -> `DecodedMessage`, with the native codec's
value checks (`check_quantity`: physical range, no clamping) and reject reasons. A time without
a zone is in the site's zone (`gateway.timezone`, passed in).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from drivers.codec import (
    TS_MAX_FUTURE_S,
    TS_MIN_MS,
    QuantityRejected,
    Rejected,
    RejectReason,
    check_quantity,
    json_object,
)
from rules.model import (
    Availability,
    DeviceEvent,
    DeviceRef,
    DeviceType,
    EventKind,
    Reading,
    quantity_base,
)

NATIVE = "native"  # the codec of a device that names none: DESIGN section 5 as it is

# `payload.gas_value`, `data.items[0].value`: keys separated by dots, list indexes in brackets.
_KEY = r"[^.\[\]\s]+"
_PATH = re.compile(rf"^{_KEY}(\[[0-9]+\])*(\.{_KEY}(\[[0-9]+\])*)*$")
_STEP = re.compile(rf"({_KEY})|\[([0-9]+)\]")

Step = str | int


def parse_path(path: str) -> tuple[Step, ...]:
    if not _PATH.match(path):
        raise ValueError(
            f"bad path {path!r}: keys separated by dots, list indexes as [0] (data.items[0].value)"
        )
    return tuple(
        m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP.finditer(path)
    )


_MISSING = object()


def _find(data: Any, steps: tuple[Step, ...]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(data, list) or step >= len(data):
                return _MISSING
        elif not isinstance(data, dict) or step not in data:
            return _MISSING
        data = data[step]
    return data


def _key(value: Any) -> str | None:
    """A JSON scalar as the string a mapping's value table is written with (1, "1", true)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float | str):
        return str(value)
    return None


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PathRule(_Frozen):
    path: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _path_parses(self) -> _PathRule:
        parse_path(self.path)
        return self

    @property
    def steps(self) -> tuple[Step, ...]:
        return parse_path(self.path)


class QuantityRule(_PathRule):
    """`quantity = value at path * scale + offset`, then the native codec's value checks."""

    quantity: str
    scale: float = Field(1.0, allow_inf_nan=False)
    offset: float = Field(0.0, allow_inf_nan=False)
    required: bool = False  # absent: the whole message is rejected (`missing_field`)

    @model_validator(mode="after")
    def _known(self) -> QuantityRule:
        if quantity_base(self.quantity) is None:
            raise ValueError(f"unknown quantity {self.quantity!r}")
        if self.scale == 0:
            raise ValueError("scale 0 would turn every reading into the offset")
        return self


TimeFormat = Literal["epoch_ms", "epoch_s", "YYYY-MM-DD HH:MM:SS", "iso8601"]


class TimeRule(_PathRule):
    format: TimeFormat


class EventRule(_PathRule):
    """Values of a field that are events. Every value the device sends must be listed: in
    `values` (an event), in `ignore` (a normal state, a heartbeat), or caught by `other`; an
    unlisted one is rejected as `unknown_event`, so a mistaken table is seen, not silent."""

    values: dict[str, EventKind] = {}
    ignore: list[str] = []
    other: EventKind | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EventRule:
        if not self.values and self.other is None:
            raise ValueError("an event rule needs values or other")
        both = sorted(set(self.values) & set(self.ignore))
        if both:
            raise ValueError(f"values {both} are both events and ignored")
        return self


class StatusRule(_PathRule):
    online: list[str] = Field(min_length=1)
    offline: list[str] = Field(min_length=1)
    ignore: list[str] = []

    @model_validator(mode="after")
    def _disjoint(self) -> StatusRule:
        both = sorted(set(self.online) & set(self.offline))
        if both:
            raise ValueError(f"values {both} are both online and offline")
        return self


class PayloadMapping(_Frozen):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    vendor: str = Field(min_length=1)
    model: str = Field(min_length=1)
    # The public document or open-source code the shape follows, or "unverified" and why.
    source: str = Field(min_length=10)
    device_type: DeviceType
    numeric_strings: bool = False  # "23.5" is read as 23.5 (many vendors quote every value)
    time: TimeRule | None = None  # absent (or absent in a message): the receipt time
    quantities: tuple[QuantityRule, ...] = ()
    events: tuple[EventRule, ...] = ()
    status: StatusRule | None = None
    _compiled: CompiledMapping | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _consistent(self) -> PayloadMapping:
        if not self.quantities and not self.events and self.status is None:
            raise ValueError("a mapping needs quantities, events or a status")
        names = [q.quantity for q in self.quantities]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"quantities mapped twice: {dupes}")
        return self

    def compiled(self) -> CompiledMapping:
        """The paths parsed once (the model is frozen: computed on first use, kept)."""
        if self._compiled is None:
            self._compiled = _compile(self)
        return self._compiled

    def decode(
        self, ref: DeviceRef, payload: bytes, received: float, zone: tzinfo
    ) -> DecodedMessage:
        return self.compiled().decode(ref, payload, received, zone)


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    """What one vendor message says: a reading (its good quantities), the quantities
    rejected, events, and the device's own statement of availability."""

    reading: Reading | None
    rejected: tuple[QuantityRejected, ...]
    events: tuple[DeviceEvent, ...]
    availability: Availability | None
    device_time: bool
    ignored: int  # top-level fields no rule reads


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """A mapping with its paths parsed, for the ingest path."""

    mapping: PayloadMapping
    quantities: tuple[tuple[str, tuple[Step, ...], QuantityRule], ...]
    events: tuple[tuple[str, tuple[Step, ...], EventRule], ...]
    time: tuple[tuple[Step, ...], TimeFormat] | None
    status: tuple[tuple[Step, ...], StatusRule] | None
    roots: frozenset[str]

    def decode(
        self, ref: DeviceRef, payload: bytes, received: float, zone: tzinfo
    ) -> DecodedMessage:
        data = json_object(payload)
        ts = received
        if self.time is not None:
            steps, fmt = self.time
            raw = _find(data, steps)
            if raw is not _MISSING and raw is not None:
                ts = _time(".".join(map(str, steps)), raw, fmt, received, zone)
        bad: list[QuantityRejected] = []
        good = self._quantities(data, bad)
        events = self._events(ref, data, ts, bad)
        availability = self._availability(ref, data, bad)
        if not good and not events and availability is None:
            if bad:
                first = bad[0]
                raise Rejected(first.reason, f"{first.quantity}: {first.detail}")
            raise Rejected(RejectReason.EMPTY, "no mapped field in the message")
        ignored = sum(1 for k in data if k not in self.roots)
        return DecodedMessage(
            Reading(ref, good, ts) if good else None,
            tuple(bad),
            events,
            availability,
            ts != received,
            ignored,
        )

    def _quantities(self, data: dict[str, Any], bad: list[QuantityRejected]) -> dict[str, float]:
        good: dict[str, float] = {}
        for path, steps, rule in self.quantities:
            raw = _find(data, steps)
            if raw is _MISSING or raw is None:
                if rule.required:
                    raise Rejected(RejectReason.MISSING_FIELD, f"{path} is missing")
                continue
            problem, value = _number(rule, raw, self.mapping.numeric_strings)
            if problem is None:
                problem = check_quantity(rule.quantity, value)
            if problem is None:
                good[rule.quantity] = value
            else:
                bad.append(problem)
        return good

    def _events(
        self, ref: DeviceRef, data: dict[str, Any], ts: float, bad: list[QuantityRejected]
    ) -> tuple[DeviceEvent, ...]:
        events: list[DeviceEvent] = []
        for path, steps, rule in self.events:
            raw = _find(data, steps)
            if raw is _MISSING or raw is None:
                continue
            key = _key(raw)
            kind = rule.values.get(key) if key is not None else None
            if kind is None and key in rule.ignore:
                continue
            kind = kind or rule.other
            if kind is None:
                bad.append(QuantityRejected(path, RejectReason.UNKNOWN_EVENT, f"value {raw!r}"))
            else:
                events.append(DeviceEvent(ref, kind, ts))
        return tuple(events)

    def _availability(
        self, ref: DeviceRef, data: dict[str, Any], bad: list[QuantityRejected]
    ) -> Availability | None:
        if self.status is None:
            return None
        steps, rule = self.status
        raw = _find(data, steps)
        if raw is _MISSING or raw is None:
            return None
        key = _key(raw)
        if key in rule.online:
            return Availability(ref, online=True)
        if key in rule.offline:
            return Availability(ref, online=False)
        if key not in rule.ignore:
            bad.append(QuantityRejected(rule.path, RejectReason.WRONG_TYPE, f"status {raw!r}"))
        return None


def _compile(m: PayloadMapping) -> CompiledMapping:
    quantities = tuple((q.path, q.steps, q) for q in m.quantities)
    events = tuple((e.path, e.steps, e) for e in m.events)
    rules: list[_PathRule] = [*m.quantities, *m.events]
    if m.time is not None:
        rules.append(m.time)
    if m.status is not None:
        rules.append(m.status)
    roots = frozenset(str(r.steps[0]) for r in rules)
    return CompiledMapping(
        m,
        quantities,
        events,
        (m.time.steps, m.time.format) if m.time else None,
        (m.status.steps, m.status) if m.status else None,
        roots,
    )


def _number(
    rule: QuantityRule, raw: Any, numeric_strings: bool
) -> tuple[QuantityRejected | None, float]:
    if numeric_strings and isinstance(raw, str):
        with contextlib.suppress(ValueError):
            raw = float(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return QuantityRejected(
            rule.quantity, RejectReason.WRONG_TYPE, f"{rule.path}: expected a number, got {raw!r}"
        ), 0.0
    if not math.isfinite(raw):
        return QuantityRejected(rule.quantity, RejectReason.NOT_FINITE, f"{rule.path}"), 0.0
    return None, raw * rule.scale + rule.offset


def _time(path: str, raw: Any, fmt: TimeFormat, received: float, zone: tzinfo) -> float:
    try:
        if fmt in ("epoch_ms", "epoch_s"):
            if isinstance(raw, str):
                raw = float(raw)
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ValueError(f"expected a number, got {raw!r}")
            ts = float(raw) / 1000.0 if fmt == "epoch_ms" else float(raw)
        elif isinstance(raw, str):
            if fmt == "YYYY-MM-DD HH:MM:SS":
                when = datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")
            else:
                when = datetime.fromisoformat(raw)
            if when.tzinfo is None:
                when = when.replace(tzinfo=zone)  # the site's wall clock
            ts = when.timestamp()
        else:
            raise ValueError(f"expected a string, got {raw!r}")
    except (ValueError, OverflowError) as exc:
        raise Rejected(RejectReason.WRONG_TYPE, f"{path}: not {fmt}: {exc}") from None
    if not math.isfinite(ts):
        raise Rejected(RejectReason.NOT_FINITE, f"{path} is not finite")
    if ts * 1000.0 < TS_MIN_MS or ts > received + TS_MAX_FUTURE_S:
        return received  # implausible device clock: keep the data, trust our clock
    return ts


class MappingError(Exception):
    pass


MAPPING_DIR = Path(str(resources.files("drivers").joinpath("mappings")))


def error_lines(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: {e['msg']}" for e in exc.errors()]


def load_mapping(path: Path) -> PayloadMapping:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: {exc}") from None
    try:
        return PayloadMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"{path}:\n  " + "\n  ".join(error_lines(exc))) from None


def _load_dir(directory: Path) -> dict[str, PayloadMapping]:
    mappings: dict[str, PayloadMapping] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            mapping = load_mapping(path)
        except MappingError as exc:
            problems.append(str(exc))
            continue
        if mapping.name != path.stem:
            problems.append(f"{path}: name {mapping.name!r} must match the file name")
            continue
        mappings[mapping.name] = mapping
    if problems:
        raise MappingError("\n".join(problems))
    return mappings


@cache
def builtin_mappings() -> dict[str, PayloadMapping]:
    """Every mapping shipped in drivers/mappings/, by name. A bad file is a hard error."""
    return _load_dir(MAPPING_DIR)


def all_mappings(extra_dirs: tuple[Path, ...] = ()) -> dict[str, PayloadMapping]:
    """Built-in mappings plus those in `extra_dirs`; a name defined twice is an error."""
    mappings = dict(builtin_mappings())
    for directory in extra_dirs:
        if not directory.is_dir():
            raise MappingError(f"{directory}: not a directory")
        for name, mapping in _load_dir(directory).items():
            if name in mappings or name == NATIVE:
                raise MappingError(f"{directory}: mapping {name!r} is already defined")
            mappings[name] = mapping
    return mappings
