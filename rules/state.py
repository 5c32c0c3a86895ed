"""What the rule engine knows per device: its configured rules and its mutable state.

`DeviceRules` is configuration (frozen, built by the config loader); `DeviceState` and
`ValveState` are the engine's working memory, changed in place by `rules.engine` and the
modules it delegates to (`rules.availability`, `rules.valve`) and never seen outside
`rules`; `DeviceStatus` is the copy of it that the engine hands out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rules import co as co_rule
from rules import thresholds as th
from rules.model import AlarmKey, AlarmType, DeviceRef, DeviceType

if TYPE_CHECKING:
    from rules.trip import AutoTrip


@dataclass(frozen=True, slots=True)
class DeviceRules:
    """Everything the engine needs to know about one configured device."""

    ref: DeviceRef
    type: DeviceType
    thresholds: tuple[th.ThresholdRule, ...] = ()
    co: co_rule.CoRule | None = None
    report_interval_s: float = 60.0
    offline_after_intervals: int = 3
    primary_quantity: str | None = None
    shutoff_valve: DeviceRef | None = None
    valve_confirm_timeout_s: float = 10.0
    valve_retry_interval_s: float = 30.0
    auto_trip: AutoTrip | None = None  # electrical-fire monitors only; off unless configured
    trip_confirm_timeout_s: float = 10.0

    @property
    def stale_after_s(self) -> float:
        return self.report_interval_s * self.offline_after_intervals


@dataclass(slots=True)
class ValveState:
    close_sent_at: float | None = None
    confirm_deadline: float | None = None
    next_retry: float | None = None
    cause: AlarmKey | None = None
    failure_active: bool = False
    reported_open: bool | None = None


@dataclass(slots=True)
class TripState:
    """An electrical-fire monitor's trips (rules.trip): monotonic times."""

    active_since: float | None = None  # a tripping alarm active without a break since
    tripped: bool = False  # this episode's automatic trip was sent
    confirm_deadline: float | None = None  # a trip under way, not yet confirmed
    overdue: bool = False  # the last trip's deadline passed (trip_failure raised)


@dataclass(slots=True)
class DeviceState:
    """Times named `*_at`/`last_seen` and the first stamp of `values` are monotonic (they
    run deadlines); `heard_at` and the second stamp of `values` are wall time, for display."""

    rules: DeviceRules
    last_seen: float  # start-up time until first heard: silence is measured from it
    primary_at: float
    heard_at: float | None = None
    values: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    said_offline: bool = False
    silent: bool = False
    offline_active: bool = False
    fault_reported: bool = False
    no_valid_reading: bool = False
    fault_active: bool = False
    fault_sources: set[str] = field(default_factory=set)  # driver-seen faults, by source
    conditions: dict[AlarmType, th.Condition] = field(default_factory=dict)
    co: co_rule.CoState | None = None
    valve: ValveState | None = None
    trip: TripState | None = None

    def fresh(self, quantity: str, now: float) -> bool:
        got = self.values.get(quantity)
        return got is not None and now - got[1] <= self.rules.stale_after_s

    def current(self, quantity: str, now: float) -> float | None:
        """The fresh value of `quantity`; for `temp_c`, the hottest fresh channel."""
        if quantity != "temp_c":
            return self.values[quantity][0] if self.fresh(quantity, now) else None
        hottest: float | None = None
        for name, (value, at, _) in self.values.items():
            if name.startswith("temp_c") and now - at <= self.rules.stale_after_s:
                hottest = value if hottest is None else max(hottest, value)
        return hottest


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What the engine believes about a device: for the API and the console."""

    online: bool
    fault: bool
    last_seen: float | None  # wall time; None: never heard from since start-up
    values: Mapping[str, tuple[float, float]]  # name -> (value, wall time received)
