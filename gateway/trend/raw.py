"""The last raw payload of each device, as it came (bounded), for an integrator to compare
with what the gateway decoded."""

from __future__ import annotations

from dataclasses import dataclass

from rules.model import DeviceRef

MAX_RAW_BYTES = 4096


@dataclass(frozen=True, slots=True)
class RawPayload:
    at: float
    channel: str  # telemetry | event | status | cmd_ack
    text: str  # decoded as UTF-8 (bad bytes replaced), cut at MAX_RAW_BYTES
    size: int  # the payload's whole size in bytes
    truncated: bool


class RawPayloads:
    """One entry per device (the newest); bounded by the configured devices, since only
    messages routed to a configured device are kept."""

    def __init__(self) -> None:
        self._last: dict[DeviceRef, RawPayload] = {}

    def keep(self, ref: DeviceRef, channel: str, payload: bytes, at: float) -> None:
        cut = payload[:MAX_RAW_BYTES]
        self._last[ref] = RawPayload(
            at, channel, cut.decode("utf-8", "replace"), len(payload), len(payload) > len(cut)
        )

    def last(self, ref: DeviceRef) -> RawPayload | None:
        return self._last.get(ref)
