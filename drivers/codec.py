"""The native JSON codec (DESIGN section 5): bytes from the wire -> our frozen types.

Every way a payload can be wrong has its own `RejectReason`, so that the metrics say
*why* a device is not being heard. Decoding is strict about shape and lenient about
nothing: a value is never clamped, rounded into range, or defaulted. The envelope is
liberal (issue 13): top-level fields beside the contract's are ignored and counted.

Telemetry is judged per quantity: one broken channel (a NaN temperature) must not hide a
good residual-current value in the same message, so bad quantities are dropped and
reported while the good ones go on. Only when nothing valid is left is the message
rejected as a whole.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from rules.model import (
    MAX_TEMP_CHANNELS,
    PHYSICAL_RANGE,
    Availability,
    DeviceEvent,
    DeviceRef,
    EventKind,
    Reading,
    quantity_base,
)

# Device clocks drift and some start at 1970: a timestamp outside this window is not
# believed (the receipt time is used instead of guessing).
TS_MIN_MS = 1_500_000_000_000  # 2017-07
TS_MAX_FUTURE_S = 24 * 3600


class RejectReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_QUANTITY = "unknown_quantity"
    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_TOPIC = "unknown_topic"
    OVERSIZE = "oversize"
    EMPTY = "empty"
    FOREIGN_ALARM = "foreign_alarm"  # central mode: an alarm id of another site, device or type
    UNKNOWN_GATEWAY = "unknown_gateway"  # central mode: presence of a gateway serving no edge site
    DUPLICATE = "duplicate"  # the broker delivered again a message already taken
    MISSING_FIELD = "missing_field"  # a payload mapping's required path is absent


class Rejected(Exception):
    """A message (or one quantity of it) that cannot be accepted. Not retryable."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    CMD_ACK = "cmd/ack"
    ALARMS = "alarms"
    COMMANDS = "commands"
    PRESENCE = "presence"  # {prefix}/gateways/{gateway id}: a gateway's online/offline
    UPLINK = "bridge/state"  # {prefix}/{site}/bridge/state: the edge broker's bridge, 1/0


@dataclass(frozen=True, slots=True)
class Route:
    ref: DeviceRef
    channel: Channel


@dataclass(frozen=True, slots=True)
class QuantityRejected:
    quantity: str
    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class DecodedTelemetry:
    reading: Reading
    rejected: tuple[QuantityRejected, ...]
    device_time: bool = False  # the reading's time is the device's (else the receipt time)
    ignored: int = 0  # top-level fields beside `ts` and `values`: counted, never a reason to drop


@dataclass(frozen=True, slots=True)
class CommandAck:
    command_id: str
    ok: bool
    detail: str | None


class TopicParser:
    """`{prefix}/{site}/{device}/{channel}` -> Route, without regular expressions."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix.strip("/") + "/"

    @property
    def subscriptions(self) -> list[str]:
        return self.bulk_subscriptions + self.control_subscriptions

    @property
    def bulk_subscriptions(self) -> list[str]:
        """Telemetry: the bulk of the traffic, taken on a connection of its own."""
        return [f"{self._prefix}+/+/telemetry"]

    @property
    def control_subscriptions(self) -> list[str]:
        """What must never queue behind telemetry: events, statuses, command acks."""
        p = self._prefix
        return [f"{p}+/+/event", f"{p}+/+/status", f"{p}+/+/cmd/ack"]

    def alarm_subscription(self, site: str) -> str:
        """An edge gateway's alarm topic, mirrored by a central gateway observing that site."""
        return f"{self._prefix}{site}/alarms"

    def commands_subscription(self, site: str) -> str:
        """An edge gateway's command records (valve and trip actions, for the bureau)."""
        return f"{self._prefix}{site}/commands"

    def presence_topic(self, gateway_id: str) -> str:
        """A gateway's presence: `online` while connected, `offline` (its will) after."""
        return f"{self._prefix}gateways/{gateway_id}"

    def presence_subscription(self) -> str:
        return f"{self._prefix}gateways/+"

    def uplink_subscription(self, site: str) -> str:
        """The Mosquitto bridge's notification topic of a site (deploy/mosquitto-bridge.conf)."""
        return f"{self._prefix}{site}/bridge/state"

    def parse(self, topic: str) -> Route:
        if not topic.startswith(self._prefix):
            raise Rejected(RejectReason.UNKNOWN_TOPIC, topic)
        parts = topic[len(self._prefix) :].split("/")
        if len(parts) == 2 and parts[0] == "gateways" and parts[1]:
            return Route(DeviceRef("", parts[1]), Channel.PRESENCE)
        if len(parts) == 2 and parts[0] and parts[1] in _SITE_LEVEL:
            # A gateway's own publication (the edge's, bridged to the bureau).
            return Route(DeviceRef(parts[0], ""), _SITE_LEVEL[parts[1]])
        if len(parts) < 3 or not parts[0] or not parts[1]:  # `+` matches an empty level too
            raise Rejected(RejectReason.UNKNOWN_TOPIC, topic)
        if len(parts) == 3 and parts[2] in _SINGLE:
            return Route(DeviceRef(parts[0], parts[1]), _SINGLE[parts[2]])
        if len(parts) == 3 and parts[1] == "bridge" and parts[2] == "state":
            return Route(DeviceRef(parts[0], ""), Channel.UPLINK)
        if len(parts) == 4 and parts[2] == "cmd" and parts[3] == "ack":
            return Route(DeviceRef(parts[0], parts[1]), Channel.CMD_ACK)
        raise Rejected(RejectReason.UNKNOWN_TOPIC, topic)


_SINGLE = {"telemetry": Channel.TELEMETRY, "event": Channel.EVENT, "status": Channel.STATUS}
_SITE_LEVEL = {"alarms": Channel.ALARMS, "commands": Channel.COMMANDS}


def load_json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson refuses NaN/Infinity outright; tell that apart from garbage so the
        # metric says "the device sends NaN", which is a sensor fault, not a codec bug.
        if _has_non_finite_literal(payload):
            raise Rejected(RejectReason.NOT_FINITE, "NaN or Infinity in payload") from None
        raise Rejected(RejectReason.MALFORMED_JSON, str(exc)) from None


def _has_non_finite_literal(payload: bytes) -> bool:
    try:
        # Strictly UTF-8, as orjson: json.loads(bytes) would also accept UTF-16 and UTF-32.
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        json.loads(text, parse_constant=_raise_non_finite, parse_int=float)
    except _NonFinite:
        return True
    except (ValueError, RecursionError):
        return False
    try:
        # 1e999 parses to inf in the standard library, which orjson refuses; so does an
        # integer literal too long for a double (orjson reads integers past 64 bits as one).
        return not _all_finite(json.loads(text, parse_int=float))
    except (ValueError, RecursionError):
        return False


class _NonFinite(Exception):
    pass


def _raise_non_finite(_: str) -> float:
    raise _NonFinite


def _all_finite(obj: Any) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_all_finite(v) for v in obj)
    return True


def json_object(payload: bytes) -> dict[str, Any]:
    if not payload:
        raise Rejected(RejectReason.EMPTY, "empty payload")
    data = load_json(payload)
    if not isinstance(data, dict):
        raise Rejected(
            RejectReason.WRONG_TYPE, f"expected a JSON object, got {type(data).__name__}"
        )
    return data


def _timestamp(data: dict[str, Any], received: float) -> float:
    ts = data.get("ts")
    if ts is None:
        return received
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise Rejected(RejectReason.WRONG_TYPE, f"ts must be epoch milliseconds, got {ts!r}")
    if not math.isfinite(ts):
        raise Rejected(RejectReason.NOT_FINITE, "ts is not finite")
    if ts < TS_MIN_MS or ts / 1000.0 > received + TS_MAX_FUTURE_S:
        return received  # implausible device clock: keep the data, trust our clock
    return float(ts) / 1000.0


def decode_telemetry(ref: DeviceRef, payload: bytes, received: float) -> DecodedTelemetry:
    data = json_object(payload)
    values = data.get("values")
    if not isinstance(values, dict):
        raise Rejected(RejectReason.WRONG_TYPE, "values must be an object of quantity: number")
    # Vendors add `seq`, `rssi`, `battery` beside the contract's fields: a gas reading must
    # reach the rules all the same. They are only counted (the router adds them up).
    ignored = len(data) - 1
    if ignored and "ts" in data:
        ignored -= 1
    ts = _timestamp(data, received)
    good: dict[str, float] = {}
    bad: list[QuantityRejected] = []
    for name, value in values.items():
        # The usual case in one lookup and one comparison (NaN and ±inf fail it too);
        # anything else gets the full check, which says what is wrong.
        bounds = _PLAIN_RANGE.get(name)
        kind = type(value)
        if (
            bounds is not None
            and (kind is float or kind is int)
            and bounds[0] <= value <= bounds[1]
        ):
            good[name] = float(value)
            continue
        problem = check_quantity(name, value)
        if problem is None:
            good[name] = float(value)
        else:
            bad.append(problem)
    if not good:
        if bad:
            first = bad[0]
            raise Rejected(first.reason, f"{first.quantity}: {first.detail}")
        raise Rejected(RejectReason.EMPTY, "values is empty")
    return DecodedTelemetry(Reading(ref, good, ts), tuple(bad), ts != received, ignored)


# Valid quantity names and their physical range, for the fast path of `decode_telemetry`
# (`open` is left to `check_quantity`: it must be exactly 0 or 1).
_PLAIN_RANGE: dict[str, tuple[float, float]] = {
    name: PHYSICAL_RANGE[base]
    for name in (*PHYSICAL_RANGE, *(f"temp_c_{i}" for i in range(1, MAX_TEMP_CHANNELS + 1)))
    if (base := quantity_base(name)) is not None and base != "open"
}


def check_quantity(name: str, value: object) -> QuantityRejected | None:
    # Quantity names are ASCII: `temp_c_²` would crash int() and `temp_c_١` alias channel 1.
    base = quantity_base(name) if name.isascii() else None
    if base is None:
        return QuantityRejected(name, RejectReason.UNKNOWN_QUANTITY, "not a known quantity")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return QuantityRejected(name, RejectReason.WRONG_TYPE, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        return QuantityRejected(name, RejectReason.NOT_FINITE, "not finite")
    lo, hi = PHYSICAL_RANGE[base]
    if not lo <= value <= hi:
        return QuantityRejected(name, RejectReason.OUT_OF_RANGE, f"{value} outside [{lo}, {hi}]")
    if base == "open" and value not in (0, 1):
        return QuantityRejected(
            name, RejectReason.OUT_OF_RANGE, f"open must be 0 or 1, got {value}"
        )
    return None


def decode_event(ref: DeviceRef, payload: bytes, received: float) -> DeviceEvent:
    data = json_object(payload)
    event = data.get("event")
    if not isinstance(event, str):
        raise Rejected(RejectReason.WRONG_TYPE, "event must be a string")
    try:
        kind = EventKind(event)
    except ValueError:
        raise Rejected(RejectReason.UNKNOWN_EVENT, f"unknown event {event!r}") from None
    return DeviceEvent(ref, kind, _timestamp(data, received))


def decode_status(ref: DeviceRef, payload: bytes) -> Availability:
    text = payload.strip().lower()
    if text in (b"online", b'"online"'):
        return Availability(ref, online=True)
    if text in (b"offline", b'"offline"'):
        return Availability(ref, online=False)
    if not text:
        raise Rejected(RejectReason.EMPTY, "empty status")
    raise Rejected(RejectReason.WRONG_TYPE, "status must be 'online' or 'offline'")


def decode_ack(payload: bytes) -> CommandAck:
    data = json_object(payload)
    cid = data.get("id")
    ok = data.get("ok")
    if not isinstance(cid, str) or not cid:
        raise Rejected(RejectReason.WRONG_TYPE, "ack id must be a non-empty string")
    if not isinstance(ok, bool):
        raise Rejected(RejectReason.WRONG_TYPE, "ack ok must be true or false")
    detail = data.get("detail")
    return CommandAck(cid, ok, detail if isinstance(detail, str) else None)


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)
