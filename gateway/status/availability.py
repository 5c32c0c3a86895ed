"""Device availability, the one implementation behind the bureau overview's 24 h online rate
and the daily report's per-device online rate, so the two cannot disagree about a device.

Pure functions over data, no I/O and no clock (the caller passes `until` / the window):

- a device is offline while one of its `device_offline` alarms is active; an alarm's active
  intervals come from its lifecycle (`alarm_intervals`, `row_intervals`): `raised` or
  `returned` start one, `cleared` or `closed` end it. `repeated` (another event of a latched
  alarm, DESIGN section 6) only happens to an alarm that is already active, so it starts
  nothing: the alarm book records it from `_worsened`, never on a cleared alarm;
- the offline time in a window is the union of those intervals clipped to it
  (`merge_intervals`, `clipped_total`);
- the online rate is device-time online over device-time in the window (`Availability`),
  summed over devices and sites, not a mean of rates.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gateway.alarms.book import Action, AlarmState
from gateway.alarms.rows import AlarmRow

Interval = tuple[float, float]
K = TypeVar("K", bound=Hashable)

_STARTS = frozenset({Action.RAISED.value, Action.RETURNED.value})
_ENDS = frozenset({Action.CLEARED.value, Action.CLOSED.value})


def alarm_intervals(
    raised_at: float,
    state: str,
    cleared_at: float | None,
    closed_at: float | None,
    events: Iterable[tuple[float, str]],
    until: float,
) -> list[Interval]:
    """The times one alarm was active.

    `events` are its timeline entries (time, action): raised/returned start an interval,
    cleared/closed end it; one that is still active runs to `until` (now, or `math.inf` for
    "still is"). Without a timeline (or with a partial one, as a mirrored alarm may have)
    the alarm is taken as active from `raised_at` to `cleared_at` (or `closed_at`, or
    `until` while it is active).
    """
    out: list[Interval] = []
    start, active = raised_at, True
    # By time only: a stable sort keeps the store's order of entries made at the same instant.
    for at, action in sorted(events, key=lambda e: e[0]):
        if action in _STARTS and not active:
            start, active = at, True
        elif action in _ENDS and active:
            out.append((start, at))
            active = False
    if active:
        if state == AlarmState.ACTIVE.value:
            end = until
        else:
            end = next((t for t in (cleared_at, closed_at) if t is not None), until)
        out.append((start, end))
    return [(s, e) for s, e in out if e > s]


def row_intervals(row: AlarmRow, until: float) -> list[Interval]:
    """`alarm_intervals` of a stored (or `AlarmRow.of` a book's) alarm."""
    events = ((e.at, e.action) for e in row.events)
    return alarm_intervals(row.raised_at, row.state, row.cleared_at, row.closed_at, events, until)


def intervals_by_device(
    rows: Iterable[AlarmRow], alarm_type: str, until: float
) -> dict[tuple[str, str], list[Interval]]:
    """(site, device) -> the active intervals of its alarms of `alarm_type` (unmerged)."""
    out: dict[tuple[str, str], list[Interval]] = {}
    for row in rows:
        if row.type == alarm_type:
            out.setdefault((row.site, row.device), []).extend(row_intervals(row, until))
    return out


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of intervals, sorted; empty or reversed ones are dropped."""
    merged: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def clipped_total(intervals: Iterable[Interval], start: float, end: float) -> float:
    """Seconds covered by the union of `intervals` within [start, end]."""
    return sum(
        min(e, end) - max(s, start) for s, e in merge_intervals(intervals) if e > start and s < end
    )


def present_at(intervals: Iterable[Interval], t: float) -> bool:
    return any(s <= t < e for s, e in intervals)


@dataclass(frozen=True, slots=True)
class Availability:
    """Device-seconds in the window and how many of them were offline."""

    device_s: float = 0.0
    offline_s: float = 0.0

    @property
    def fraction(self) -> float | None:
        """Online fraction, unrounded; None when no device-time was seen."""
        if self.device_s <= 0:
            return None
        return max(0.0, self.device_s - self.offline_s) / self.device_s

    @property
    def rate(self) -> float | None:
        """Online fraction, 4 decimals (the overview's `online_rate_24h`)."""
        fraction = self.fraction
        return None if fraction is None else round(fraction, 4)

    def __add__(self, other: Availability) -> Availability:
        return Availability(self.device_s + other.device_s, self.offline_s + other.offline_s)


def availability(
    known: Iterable[K],
    offline: Mapping[K, Sequence[Interval]],
    start: float,
    end: float,
) -> Availability:
    """Online time of the `known` devices in [start, end]; others' intervals are ignored."""
    devices = set(known)
    window = max(0.0, end - start)
    offline_s = sum(clipped_total(offline.get(d, ()), start, end) for d in devices)
    return Availability(window * len(devices), offline_s)
