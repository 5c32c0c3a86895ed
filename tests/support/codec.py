"""Calling the native JSON codec (drivers/codec.py) the way its tests do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from drivers import codec
from drivers.codec import (
    Rejected,
    RejectReason,
)
from rules.model import DeviceRef

REF = DeviceRef("xingfu", "gas-kitchen")
NOW = 1_732_480_000.0  # receipt time, epoch seconds
TS_MS = 1_732_479_990_123  # ten seconds before receipt, epoch milliseconds


def telemetry(payload: bytes | str | dict[str, Any]) -> codec.DecodedTelemetry:
    return codec.decode_telemetry(REF, payload_bytes(payload), NOW)


def payload_bytes(payload: bytes | str | dict[str, Any]) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload).encode("utf-8")


def rejected(fn: Any, *args: Any) -> Rejected:
    with pytest.raises(Rejected) as info:
        fn(*args)
    return info.value


def telemetry_rejected(payload: bytes | str | dict[str, Any]) -> RejectReason:
    return rejected(codec.decode_telemetry, REF, payload_bytes(payload), NOW).reason
