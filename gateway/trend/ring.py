"""One quantity's last 24 h: a fixed ring of 30 s buckets (2,880), each with the lowest,
highest and last value it saw. Fixed arrays, allocated once: 16 bytes a bucket, 46 KB a
quantity, whatever the device sends; a reading is one slot update."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

BUCKET_S = 30.0
SPAN_S = 24 * 3600.0
SLOTS = int(SPAN_S // BUCKET_S)
_EMPTY = -1


@dataclass(frozen=True, slots=True)
class Point:
    at: float  # the bucket's start, epoch seconds
    low: float
    high: float
    last: float


class QuantityRing:
    __slots__ = ("_bucket", "_high", "_last", "_low")

    def __init__(self) -> None:
        self._bucket = array("i", [_EMPTY]) * SLOTS
        self._low = array("f", [0.0]) * SLOTS
        self._high = array("f", [0.0]) * SLOTS
        self._last = array("f", [0.0]) * SLOTS

    def add(self, at: float, value: float) -> None:
        bucket = int(at // BUCKET_S)
        slot = bucket % SLOTS
        held = self._bucket[slot]
        if held == bucket:
            self._low[slot] = min(self._low[slot], value)
            self._high[slot] = max(self._high[slot], value)
            self._last[slot] = value
        elif held < bucket:  # a bucket older than 24 h (or none): this one replaces it
            self._bucket[slot] = bucket
            self._low[slot] = self._high[slot] = self._last[slot] = value
        # held > bucket: a reading more than 24 h older than one already kept; too old

    def points(self, now: float, span_s: float = SPAN_S) -> list[Point]:
        """The buckets of (now - span_s, now], oldest first."""
        newest = int(now // BUCKET_S)
        count = min(SLOTS, max(1, int(span_s // BUCKET_S)))
        out = []
        for bucket in range(newest - count + 1, newest + 1):
            slot = bucket % SLOTS
            if self._bucket[slot] == bucket:
                out.append(
                    Point(
                        bucket * BUCKET_S,
                        _shown(self._low[slot]),
                        _shown(self._high[slot]),
                        _shown(self._last[slot]),
                    )
                )
        return out


def _shown(stored: float) -> float:
    # Single precision keeps the ring small; its seven digits, not its binary tail (23.4,
    # not 23.399999618530273), are what was measured.
    return float(f"{stored:.6g}")
