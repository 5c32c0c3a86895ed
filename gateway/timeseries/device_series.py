"""`DeviceSeries`: what the gateway writes to the time series besides readings: alarm
points, a device-status point whenever a status alarm moves, and every device's status
once a minute (for online-rate charts). Only for the sites this gateway decides for."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from gateway.alarms.event import AlarmEvent
from gateway.config.inventory import Inventory
from gateway.timeseries.feed import TimeSeriesFeed
from rules.engine import RuleEngine
from rules.model import DeviceRef


class DeviceSeries:
    def __init__(
        self,
        feed: TimeSeriesFeed,
        engine: RuleEngine,
        inventory: Inventory,
        decides: Callable[[str], bool],
        clock: Callable[[], float],
    ) -> None:
        self._feed = feed
        self._engine = engine
        self._inventory = inventory
        self._decides = decides
        self._clock = clock

    def alarm(self, event: AlarmEvent) -> None:
        self._feed.alarm(event)

    def status_point(self, ref: DeviceRef, at: float) -> None:
        if self._engine.knows(ref):
            online, fault = self._engine.flags(ref)
            self._feed.device_status(ref.site, ref.device, online, fault, at)

    def snapshot(self, chunk: int = 500) -> Iterator[None]:
        """Every device's status as a point. Yields after every `chunk` devices: ten
        thousand in one go held the loop 120 ms."""
        now = self._clock()
        for i, installed in enumerate(self._inventory):
            if self._decides(installed.ref.site):
                self.status_point(installed.ref, now)
            if i % chunk == chunk - 1:
                yield
