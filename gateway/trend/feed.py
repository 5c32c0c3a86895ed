"""`DeviceTrends`: the readings' second reader beside the time series (`ReadingsTee`): the
rings of the last 24 h, and valves opened by hand on site."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.audit import SYSTEM, AuditEntry, AuditLog
from gateway.health.metrics import Metrics
from gateway.ingest.series import ReadingSeries
from gateway.trend.onsite import opened_by_hand
from gateway.trend.ring import SPAN_S, Point, QuantityRing
from rules.model import DeviceRef, Reading

log = logging.getLogger(__name__)

# 46 KB a quantity: 20,000 of them (e.g. 10,000 detectors of one quantity, or 2,500
# electrical-fire monitors with their eight channels) is about 1 GB at most; beyond, a new
# quantity gets no trend (counted), the alarm path is untouched.
MAX_RINGS = 20_000
HAND_OPENINGS_KEPT = 20


@dataclass(frozen=True, slots=True)
class HandOpening:
    ref: DeviceRef
    at: float


class DeviceTrends:
    def __init__(
        self,
        clock: Callable[[], float],
        gas_alarm_open: Callable[[DeviceRef], bool],
        on_hand_opening: Callable[[HandOpening], object] = lambda _: None,
        max_rings: int = MAX_RINGS,
    ) -> None:
        self._clock = clock
        self._gas_alarm_open = gas_alarm_open
        self._on_hand_opening = on_hand_opening
        self._max_rings = max_rings
        self._rings: dict[DeviceRef, dict[str, QuantityRing]] = {}
        self._ring_count = 0
        self.rings_refused = 0
        self._valve_open: dict[DeviceRef, bool] = {}
        self._commanded_open: dict[DeviceRef, float] = {}
        self.hand_openings: collections.deque[HandOpening] = collections.deque(
            maxlen=HAND_OPENINGS_KEPT
        )

    def reading(self, r: Reading, device_type: str) -> None:
        now = self._clock()
        at = r.ts if r.ts < now else now  # a device clock ahead of ours would draw ahead
        rings = self._rings.get(r.ref)
        if rings is None:
            rings = self._rings[r.ref] = {}
        for quantity, value in r.values.items():
            ring = rings.get(quantity)
            if ring is None:
                if self._ring_count >= self._max_rings:
                    self.rings_refused += 1
                    continue
                ring = rings[quantity] = QuantityRing()
                self._ring_count += 1
            ring.add(at, value)
        if device_type == "gas_valve" and "open" in r.values:
            self._valve_reported(r.ref, r.values["open"] >= 0.5, now)

    def commanded_open(self, ref: DeviceRef, at: float) -> None:
        """The gateway sent `open_valve` to `ref` (a person's command through the API)."""
        self._commanded_open[ref] = at

    def _valve_reported(self, ref: DeviceRef, is_open: bool, now: float) -> None:
        was_open = self._valve_open.get(ref)
        self._valve_open[ref] = is_open
        if opened_by_hand(
            was_open=was_open,
            is_open=is_open,
            gas_alarm_open=self._gas_alarm_open(ref),
            commanded_open_at=self._commanded_open.get(ref),
            now=now,
        ):
            opening = HandOpening(ref, now)
            self.hand_openings.append(opening)
            self._on_hand_opening(opening)

    def series(self, ref: DeviceRef, now: float, span_s: float = SPAN_S) -> dict[str, list[Point]]:
        return {q: ring.points(now, span_s) for q, ring in self._rings.get(ref, {}).items()}

    def openings_of(self, ref: DeviceRef) -> list[HandOpening]:
        return [o for o in self.hand_openings if o.ref == ref]


class ReadingsTee:
    """The readings' way out of ingest: the trends always, the time series when there is
    one. A failure of the trends is logged and never reaches the alarm path."""

    def __init__(self, trends: DeviceTrends, series: ReadingSeries | None) -> None:
        self._trends = trends
        self._series = series

    def reading(self, r: Reading, device_type: str) -> None:
        try:
            self._trends.reading(r, device_type)
        except Exception:
            log.exception("trend of %s not kept", r.ref)
        if self._series is not None:
            self._series.reading(r, device_type)


VALVE_OPENED_ON_SITE = "valve.opened_on_site"


class HandOpeningTrail:
    """Writes each hand opening to the audit trail (the timeline the console shows for a
    device without an alarm), off the ingest path: the append runs as its own task."""

    def __init__(self, audit: AuditLog, metrics: Metrics) -> None:
        self._audit = audit
        self._metrics = metrics
        self._pending: set[asyncio.Task[None]] = set()

    def __call__(self, opening: HandOpening) -> None:
        task = asyncio.get_running_loop().create_task(self._append(opening))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _append(self, opening: HandOpening) -> None:
        entry = AuditEntry(
            at=opening.at,
            actor=SYSTEM,
            actor_name="现场手动",
            role=SYSTEM,
            source="device",
            action=VALVE_OPENED_ON_SITE,
            site=opening.ref.site,
            target=opening.ref.device,
            detail={"open": 1, "gas_alarm_open": False},
        )
        try:
            await self._audit.append(entry)
        except Exception:
            self._metrics.audit_failures.labels(VALVE_OPENED_ON_SITE).inc()
            log.exception("hand opening of %s not recorded in the audit log", opening.ref)
