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
    head: bytes  # the first MAX_RAW_BYTES, as received
    size: int  # the payload's whole size in bytes

    @property
    def text(self) -> str:
        """As UTF-8 (bad bytes replaced; decoded when read, never on the ingest path)."""
        return self.head.decode("utf-8", "replace")

    @property
    def truncated(self) -> bool:
        return self.size > len(self.head)


class RawPayloads:
    """One entry per device (the newest); bounded by the configured devices, since only
    messages routed to a configured device are kept."""

    def __init__(self) -> None:
        self._last: dict[DeviceRef, RawPayload] = {}

    def keep(self, ref: DeviceRef, channel: str, payload: bytes, at: float) -> None:
        self._last[ref] = RawPayload(at, channel, payload[:MAX_RAW_BYTES], len(payload))

    def last(self, ref: DeviceRef) -> RawPayload | None:
        return self._last.get(ref)
