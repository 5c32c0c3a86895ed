"""Live feed for `WS /api/live`: alarm changes at once, device changes coalesced.

Each subscriber has a bounded queue. Alarm changes are never dropped for a subscriber:
if its queue is full, the subscriber is disconnected instead (the console reconnects and
reloads the full state), so a slow browser cannot make another miss an alarm. Device
value changes are the bulk lane: marked dirty and flushed once a second, at most one
message per device per flush.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules.model import DeviceRef

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)  # identity: each subscriber is one connection
class Subscriber:
    queue: asyncio.Queue[dict[str, Any]]
    sites: frozenset[str] | None  # None: every site
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, site: str) -> bool:
        return self.sites is None or site in self.sites


class LiveHub:
    QUEUE_SIZE = 1000

    def __init__(self, device_view: Callable[[DeviceRef], dict[str, Any] | None]) -> None:
        self._subscribers: set[Subscriber] = set()
        self._dirty: set[DeviceRef] = set()
        self._device_view = device_view
        self.disconnected_slow = 0
        self.dropped_device_updates = 0

    def subscribe(self, sites: frozenset[str] | None) -> Subscriber:
        sub = Subscriber(asyncio.Queue(self.QUEUE_SIZE), sites)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def alarm_changed(self, site: str, message: dict[str, Any]) -> None:
        self.push(site, message)

    def push(self, site: str, message: dict[str, Any]) -> None:
        """A message about one site to every subscriber of that site, never dropped: a
        subscriber too slow to take it is disconnected (it reconnects to a fresh snapshot)."""
        for sub in list(self._subscribers):
            if not sub.wants(site):
                continue
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                self.disconnected_slow += 1
                sub.overflowed.set()
                self._subscribers.discard(sub)

    def device_changed(self, ref: DeviceRef) -> None:
        if self._subscribers:
            self._dirty.add(ref)

    def flush_devices(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for ref in dirty:
            view = self._device_view(ref)
            if view is None:
                continue
            message = {"kind": "device", "device": view}
            for sub in list(self._subscribers):
                if sub.wants(ref.site):
                    try:
                        sub.queue.put_nowait(message)
                    except asyncio.QueueFull:
                        # bulk lane: counted, and retried with the newest value next flush
                        self.dropped_device_updates += 1
                        self._dirty.add(ref)

    async def run_flusher(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.flush_devices()
