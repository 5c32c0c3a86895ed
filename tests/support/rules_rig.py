"""A small `Rig` that feeds the real rule engine (rules/engine.py) at explicit times and
records what comes out, with the one site its tests use. Time is an offset `t` from the
start: the engine gets monotonic MONO0 + t and wall T0 + t + `wall_offset`, which a test
moves with `jump_wall` (an NTP step) while monotonic time runs on evenly."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rules import defaults
from rules.engine import DeviceRules, RuleEngine
from rules.model import (
    AlarmChange,
    AlarmKey,
    AlarmType,
    Availability,
    ChangeKind,
    Command,
    CommandKind,
    CommandResult,
    DeviceEvent,
    DeviceRef,
    DeviceType,
    EventKind,
    Instant,
    Outcome,
    Reading,
    Reason,
)

T0 = 1_700_000_000.0  # wall time at the start
MONO0 = 5_000.0  # monotonic time at the start: far from T0, so a mix-up shows
SITE = "home-1"
GAS = DeviceRef(SITE, "gas-kitchen")
VALVE = DeviceRef(SITE, "valve-kitchen")
CO_DET = DeviceRef(SITE, "co-room-101")
EFM = DeviceRef(SITE, "efm-panel-1")
BUTTON = DeviceRef(SITE, "button-101")
SMOKE = DeviceRef(SITE, "smoke-corridor")

GAS_KEY = AlarmKey(SITE, GAS.device, AlarmType.GAS_LEAK)
VALVE_FAILURE_KEY = AlarmKey(SITE, VALVE.device, AlarmType.VALVE_FAILURE)

GAS_STALE = defaults.REPORT_INTERVAL_S[DeviceType.GAS_DETECTOR] * defaults.OFFLINE_AFTER_INTERVALS
assert GAS_STALE == 90.0


def dev(ref: DeviceRef, type_: DeviceType, **kw: object) -> DeviceRules:
    """DeviceRules as the config loader would build them from rules.defaults."""
    base: dict[str, object] = {
        "ref": ref,
        "type": type_,
        "thresholds": defaults.THRESHOLDS.get(type_, ()),
        "co": defaults.CO if type_ is DeviceType.CO_DETECTOR else None,
        "report_interval_s": defaults.REPORT_INTERVAL_S[type_],
        "offline_after_intervals": defaults.OFFLINE_AFTER_INTERVALS,
        "primary_quantity": defaults.PRIMARY_QUANTITY.get(type_),
        "valve_confirm_timeout_s": defaults.VALVE_CONFIRM_TIMEOUT_S,
        "valve_retry_interval_s": defaults.VALVE_RETRY_INTERVAL_S,
    }
    if type_ is DeviceType.GAS_DETECTOR:
        base["shutoff_valve"] = VALVE
    base.update(kw)
    return DeviceRules(**base)  # type: ignore[arg-type]


def gas(**kw: object) -> DeviceRules:
    return dev(GAS, DeviceType.GAS_DETECTOR, **kw)


def valve(**kw: object) -> DeviceRules:
    return dev(VALVE, DeviceType.GAS_VALVE, **kw)


def site() -> list[DeviceRules]:
    return [
        gas(),
        valve(),
        dev(CO_DET, DeviceType.CO_DETECTOR),
        dev(EFM, DeviceType.ELECTRICAL_FIRE_MONITOR),
        dev(BUTTON, DeviceType.ALARM_BUTTON),
        dev(SMOKE, DeviceType.SMOKE_DETECTOR),
    ]


@dataclass
class Feed:
    """A device reporting `values` every `every` seconds from `start` until `stop`."""

    ref: DeviceRef
    every: float
    values: dict[str, float]
    start: float = 0.0
    stop: float = float("inf")

    def due(self, t: float) -> bool:
        if t < self.start or t > self.stop:
            return False
        k = (t - self.start) / self.every
        return abs(k - round(k)) < 1e-9


@dataclass
class Rig:
    """The real engine on a fake clock; records every change and command with its offset."""

    devices: Sequence[DeviceRules] = field(default_factory=site)
    t: float = 0.0
    wall_offset: float = 0.0
    engine: RuleEngine = field(init=False)
    changes: list[tuple[float, AlarmChange]] = field(default_factory=list)
    commands: list[tuple[float, Command]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = RuleEngine(self.devices, self.now)

    @property
    def now(self) -> Instant:
        return Instant(MONO0 + self.t, T0 + self.t + self.wall_offset)

    def jump_wall(self, seconds: float) -> None:
        """The wall clock is stepped (NTP, a person): monotonic time does not move."""
        self.wall_offset += seconds

    # inputs ------------------------------------------------------------------
    def _go(self, t: float) -> Instant:
        assert t >= self.t, f"time must not run backwards: {t} < {self.t}"
        self.t = t
        return self.now

    def _record(self, out: Outcome) -> Outcome:
        for c in out.commands:
            # DESIGN: the engine only ever asks for close_valve; opening gas is a person's call
            assert c.cmd is CommandKind.CLOSE_VALVE, c
            assert c.cmd is not CommandKind.OPEN_VALVE
            self.commands.append((self.t, c))
        self.changes.extend((self.t, c) for c in out.changes)
        return out

    def reading(self, t: float, ref: DeviceRef, **values: float) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.on_reading(Reading(ref, values, now.wall), now))

    def reconfigure(self, t: float, devices: Iterable[DeviceRules]) -> None:
        self.engine.reconfigure(devices, self._go(t))

    def event(self, t: float, ref: DeviceRef, kind: EventKind) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.on_event(DeviceEvent(ref, kind, now.wall), now))

    def avail(self, t: float, ref: DeviceRef, online: bool) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.on_availability(Availability(ref, online), now))

    def result(
        self, t: float, ok: bool, ref: DeviceRef = VALVE, cmd: CommandKind = CommandKind.CLOSE_VALVE
    ) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.on_command_result(CommandResult(ref, cmd, ok), now))

    def restore(
        self, t: float, key: AlarmKey, level: str | None = None, reason: Reason | None = None
    ) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.restore(key, level, reason, now))

    def tick(self, t: float) -> Outcome:
        now = self._go(t)
        return self._record(self.engine.tick(now))

    def run(self, until: float, feeds: Iterable[Feed] = (), step: float = 1.0) -> None:
        """Tick on the grid of `step` s up to `until`, delivering due feed readings first."""
        feeds = list(feeds)
        k = math.floor(self.t / step + 1e-9) + 1
        while k * step <= until + 1e-9:
            t = k * step
            k += 1
            for f in feeds:
                if f.due(t):
                    self.reading(t, f.ref, **f.values)
            self.tick(t)

    # queries -----------------------------------------------------------------
    def seen(
        self,
        alarm: AlarmType | None = None,
        kind: ChangeKind | None = None,
        ref: DeviceRef | None = None,
        since: float = float("-inf"),
    ) -> list[tuple[float, AlarmChange]]:
        return [
            (t, c)
            for t, c in self.changes
            if (alarm is None or c.key.type is alarm)
            and (kind is None or c.kind is kind)
            and (ref is None or c.key.ref == ref)
            and t >= since
        ]

    def kinds(self, alarm: AlarmType, ref: DeviceRef | None = None) -> list[ChangeKind]:
        return [c.kind for _, c in self.seen(alarm, ref=ref)]

    def closes(self, since: float = float("-inf")) -> list[float]:
        return [t for t, c in self.commands if c.cmd is CommandKind.CLOSE_VALVE and t >= since]


def gas_changes(out: Outcome) -> list[AlarmChange]:
    return [c for c in out.changes if c.key == GAS_KEY]


def of_type(out: Outcome, alarm: AlarmType) -> list[AlarmChange]:
    return [c for c in out.changes if c.key.type is alarm]
