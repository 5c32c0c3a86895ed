"""Domain types shared by drivers, the rule engine and the gateway shell.

Everything here is a plain frozen value: no protocol library, no I/O. Drivers convert
their wire objects into these as soon as they arrive; the rule engine turns them into
`AlarmChange`s and `Command`s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum


class AlarmType(StrEnum):
    GAS_LEAK = "gas_leak"
    CO = "co"
    SMOKE = "smoke"
    FIRE_BUTTON = "fire_button"
    RESIDUAL_CURRENT = "residual_current"
    OVERTEMPERATURE = "overtemperature"
    OVERCURRENT = "overcurrent"
    DEVICE_OFFLINE = "device_offline"
    DEVICE_FAULT = "device_fault"
    VALVE_FAILURE = "valve_failure"
    TRIP_FAILURE = "trip_failure"  # extension: a trip (power cut) command not confirmed
    # extension (central mode): the edge gateway serving a site is offline, so nothing at the
    # site closes the gas or phones anyone; raised by the bureau's gateway, for the bureau
    EDGE_OFFLINE = "edge_offline"
    # extension: the gateway found its alarm database corrupt at start, kept it aside and
    # runs on a fresh one (alarm history before it is not in the console); latched
    STORE_FAILURE = "store_failure"


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        """Higher is more urgent; used for sorting and for 'did it get worse'."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.WARNING: 1,
    Severity.MINOR: 2,
    Severity.MAJOR: 3,
    Severity.CRITICAL: 4,
}

# DESIGN section 6: the severity each alarm type carries once it is a real alarm.
# Pre-alarm levels of a threshold rule use WARNING regardless of type.
DEFAULT_SEVERITY: Mapping[AlarmType, Severity] = {
    AlarmType.GAS_LEAK: Severity.CRITICAL,
    AlarmType.CO: Severity.CRITICAL,
    AlarmType.SMOKE: Severity.CRITICAL,
    AlarmType.FIRE_BUTTON: Severity.CRITICAL,
    AlarmType.VALVE_FAILURE: Severity.CRITICAL,
    AlarmType.TRIP_FAILURE: Severity.MAJOR,
    AlarmType.RESIDUAL_CURRENT: Severity.MAJOR,
    AlarmType.OVERTEMPERATURE: Severity.MAJOR,
    AlarmType.OVERCURRENT: Severity.MAJOR,
    AlarmType.DEVICE_OFFLINE: Severity.MINOR,
    AlarmType.DEVICE_FAULT: Severity.MINOR,
    AlarmType.EDGE_OFFLINE: Severity.CRITICAL,
    AlarmType.STORE_FAILURE: Severity.MAJOR,
}


class DeviceType(StrEnum):
    GAS_DETECTOR = "gas_detector"
    CO_DETECTOR = "co_detector"
    GAS_VALVE = "gas_valve"
    ALARM_BUTTON = "alarm_button"
    SMOKE_DETECTOR = "smoke_detector"
    ELECTRICAL_FIRE_MONITOR = "electrical_fire_monitor"
    GAS_ALARM_CONTROLLER = "gas_alarm_controller"


class EventKind(StrEnum):
    PRESSED = "pressed"
    SMOKE = "smoke"
    FAULT = "fault"
    FAULT_CLEARED = "fault_cleared"
    TAMPER = "tamper"
    SELF_TEST = "self_test"


class CommandKind(StrEnum):
    CLOSE_VALVE = "close_valve"
    OPEN_VALVE = "open_valve"
    TRIP = "trip"
    RESET = "reset"


class Reason(StrEnum):
    """Why the engine decided what it did; goes into the alarm timeline and messages."""

    THRESHOLD_EXCEEDED = "threshold_exceeded"
    LEVEL_RAISED = "level_raised"
    NEW_PEAK = "new_peak"
    RETURNED_TO_NORMAL = "returned_to_normal"
    CO_DOSE_REACHED = "co_dose_reached"
    BUTTON_PRESSED = "button_pressed"
    SMOKE_DETECTED = "smoke_detected"
    FAULT_REPORTED = "fault_reported"
    FAULT_CLEARED = "fault_cleared"
    TAMPER = "tamper"
    NO_VALID_READING = "no_valid_reading"
    VALID_READING_RETURNED = "valid_reading_returned"
    STATUS_OFFLINE = "status_offline"
    POLL_FAILED = "poll_failed"
    EXCEPTION_RESPONSE = "exception_response"
    STATUS_BIT = "status_bit"
    SILENT = "silent"
    BACK_ONLINE = "back_online"
    VALVE_NOT_CONFIRMED = "valve_not_confirmed"
    VALVE_REFUSED = "valve_refused"
    VALVE_REPORTED_OPEN = "valve_reported_open"
    VALVE_CONFIRMED = "valve_confirmed"
    VALVE_RESPONDED = "valve_responded"
    EDGE_GATEWAY_OFFLINE = "edge_gateway_offline"
    EDGE_GATEWAY_ONLINE = "edge_gateway_online"
    TRIP_NOT_CONFIRMED = "trip_not_confirmed"
    AUTO_TRIP = "auto_trip"  # extension: an electrical alarm tripped the circuit (rules.trip)
    GAS_ALARM = "gas_alarm"
    RESTORED = "restored"
    STORE_CORRUPT = "store_corrupt"


# Physical ranges of the canonical quantities (DESIGN section 5). A value outside them
# cannot be a measurement, so it is rejected rather than clamped. The bounds are wide on
# purpose: %LEL above 100 is a real (very dangerous) concentration, not an error.
PHYSICAL_RANGE: Mapping[str, tuple[float, float]] = {
    "lel": (-5.0, 2000.0),  # pure methane is 2000 %LEL; small negatives are zero drift
    "co_ppm": (-5.0, 1_000_000.0),
    "residual_ma": (0.0, 100_000.0),
    "temp_c": (-60.0, 1000.0),
    "current_a": (0.0, 100_000.0),
    "voltage_v": (0.0, 100_000.0),
    "open": (0.0, 1.0),
}
MAX_TEMP_CHANNELS = 16


def quantity_base(name: str) -> str | None:
    """`temp_c_3` -> `temp_c`; unknown names -> None."""
    known = _BASE_OF.get(name)
    if known is not None:
        return known
    if name in PHYSICAL_RANGE:
        return name
    if name.startswith("temp_c_"):
        suffix = name[7:]
        if suffix.isdigit() and 1 <= int(suffix) <= MAX_TEMP_CHANNELS:
            return "temp_c"
    return None


# Every valid quantity name, looked up once per value on the ingest path.
_BASE_OF: Mapping[str, str] = {
    **{name: name for name in PHYSICAL_RANGE},
    **{f"temp_c_{i}": "temp_c" for i in range(1, MAX_TEMP_CHANNELS + 1)},
}


@dataclass(frozen=True, slots=True)
class Instant:
    """Both clocks, read once by the shell per message or tick and passed down.

    `mono` (monotonic seconds, arbitrary origin) runs every deadline, delay and freshness
    window, so that a step of the wall clock (NTP, a person setting the time) neither raises
    nor delays anything; `wall` (epoch seconds) only stamps what is shown or stored.
    """

    mono: float
    wall: float


@dataclass(frozen=True, slots=True)
class DeviceRef:
    site: str
    device: str

    def __str__(self) -> str:
        return f"{self.site}/{self.device}"


@dataclass(frozen=True, slots=True)
class AlarmKey:
    """DESIGN section 6: at most one open alarm per (site, device, type)."""

    site: str
    device: str
    type: AlarmType

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.site, self.device)


@dataclass(frozen=True, slots=True)
class Reading:
    """Validated measurements from one device at one instant.

    `ts` is the device's own timestamp (epoch seconds) when it sent one, else receipt time.
    """

    ref: DeviceRef
    values: Mapping[str, float]
    ts: float

    def __post_init__(self) -> None:
        for name, value in self.values.items():
            if quantity_base(name) is None:
                raise ValueError(f"unknown quantity {name!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} is not finite")


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    ref: DeviceRef
    event: EventKind
    ts: float


@dataclass(frozen=True, slots=True)
class Availability:
    """A statement about reachability: the device's own (MQTT status/will), or the poller's
    after consecutive failed polls (`reason` POLL_FAILED). Not an inference from silence."""

    ref: DeviceRef
    online: bool
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class FaultReport:
    """A fault seen by a driver: a status bit set, exception responses. `source` names it,
    so that several sources can hold one device_fault open and each clears only its own."""

    ref: DeviceRef
    source: str
    active: bool
    reason: Reason


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A device's answer to a command the gateway sent (MQTT cmd/ack, Modbus write-back)."""

    ref: DeviceRef
    cmd: CommandKind
    ok: bool


class ChangeKind(Enum):
    RAISE = "raise"  # condition became abnormal (or an event happened)
    ESCALATE = "escalate"  # same condition, higher level or severity
    PEAK = "peak"  # same condition and level, worse value
    CLEAR = "clear"  # condition returned to normal


@dataclass(frozen=True, slots=True)
class AlarmChange:
    key: AlarmKey
    kind: ChangeKind
    severity: Severity
    reason: Reason
    value: float | None = None
    level: str | None = None
    # Event alarms (button, smoke, tamper) never clear by themselves: a person closes them.
    latched: bool = False


@dataclass(frozen=True, slots=True)
class Command:
    """A command the engine wants sent. `cause` is the alarm that asked for it."""

    ref: DeviceRef
    cmd: CommandKind
    cause: AlarmKey
    reason: Reason
    detail: str | None = None  # for the alarm's timeline: why, which condition agreed


@dataclass(slots=True)
class Outcome:
    changes: list[AlarmChange] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.changes.extend(other.changes)
        self.commands.extend(other.commands)

    def extend_with(self, other: Outcome) -> Outcome:
        self.extend(other)
        return self

    def __bool__(self) -> bool:
        return bool(self.changes or self.commands)
