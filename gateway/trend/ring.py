"""One quantity's last 24 h: a fixed ring of 30 s buckets (2,880), each with the lowest,
highest and last value it saw. One fixed array, allocated once: 16 bytes a bucket, 46 KB a
quantity, whatever the device sends; a reading is one slot update."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

BUCKET_S = 30.0
SPAN_S = 24 * 3600.0
SLOTS = int(SPAN_S // BUCKET_S)
_EMPTY = -16_777_216.0  # below any bucket a ring keeps (-2**24: exact in single precision)


@dataclass(frozen=True, slots=True)
class Point:
    at: float  # the bucket's start, epoch seconds
    low: float
    high: float
    last: float


class QuantityRing:
    """The cells of a bucket side by side (its number, low, high, last: 16 bytes, one cache
    line), so that a reading touches one line of memory, not four arrays' worth: with a
    thousand devices the rings do not fit in the cache, and a miss per array cost the burst
    rate more than the arithmetic (measured). The bucket's number is kept relative to the
    ring's first, exact in single precision for 16 million buckets (16 years)."""

    __slots__ = ("_base", "_cells")

    def __init__(self) -> None:
        self._base: int | None = None
        self._cells = array("f", [_EMPTY, 0.0, 0.0, 0.0]) * SLOTS

    def add(self, at: float, value: float) -> None:
        bucket = int(at // BUCKET_S)
        base = self._base
        if base is None:
            base = self._base = bucket
        rel = bucket - base
        i = (bucket % SLOTS) * 4
        c = self._cells
        held = c[i]
        if held == rel:
            # Comparisons, not min()/max(): this runs for every reading of every device.
            if value < c[i + 1]:
                c[i + 1] = value
            elif value > c[i + 2]:
                c[i + 2] = value
            c[i + 3] = value
        elif held < rel:  # a bucket older than 24 h (or none): this one replaces it
            c[i] = rel
            c[i + 1] = c[i + 2] = c[i + 3] = value
        # held > rel: a reading more than 24 h older than one already kept; too old

    def points(self, now: float, span_s: float = SPAN_S) -> list[Point]:
        """The buckets of (now - span_s, now], oldest first."""
        if self._base is None:
            return []
        newest = int(now // BUCKET_S)
        count = min(SLOTS, max(1, int(span_s // BUCKET_S)))
        c = self._cells
        out = []
        for bucket in range(newest - count + 1, newest + 1):
            i = (bucket % SLOTS) * 4
            if c[i] == bucket - self._base:
                out.append(
                    Point(bucket * BUCKET_S, _shown(c[i + 1]), _shown(c[i + 2]), _shown(c[i + 3]))
                )
        return out


def _shown(stored: float) -> float:
    # Single precision keeps the ring small; its seven digits, not its binary tail (23.4,
    # not 23.399999618530273), are what was measured.
    return float(f"{stored:.6g}")
