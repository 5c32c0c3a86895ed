"""Live feed for `WS /api/live`: alarm changes at once, device changes coalesced.

Each subscriber has two lanes. The alarm lane (alarm and edge changes) is a bounded queue
whose messages are never dropped: if it is full, the subscriber is disconnected instead
(the console reconnects and reloads the full state), so a slow browser cannot make another
miss an alarm. The device lane holds at most one message per device, the newest: devices
are marked dirty as readings arrive and flushed once a second. A subscriber's sender always
empties the alarm lane before it sends a device message, and sends device messages at most
`DEVICE_RATE` a second (a console shows a grid; ten thousand changing devices must neither
delay an alarm nor take the loop from ingestion, as they did: 100-200 ms per send burst).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rules.model import DeviceRef

log = logging.getLogger(__name__)

Message = dict[str, Any]


DEVICE_RATE = 200.0  # device messages per second and subscriber
DEVICE_BURST = 50


@dataclass(slots=True, eq=False)  # identity: each subscriber is one connection
class Subscriber:
    sites: frozenset[str] | None  # None: every site
    max_alarms: int
    device_rate: float = DEVICE_RATE
    tokens: float = DEVICE_BURST
    refilled_at: float | None = None
    alarms: collections.deque[Message] = field(default_factory=collections.deque)
    # newest message per device, oldest change first
    devices: collections.OrderedDict[DeviceRef, Message] = field(
        default_factory=collections.OrderedDict
    )
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def take(self, max_devices: int) -> list[Message]:
        """Every waiting alarm message, then at most `max_devices` device messages."""
        out = list(self.alarms)
        self.alarms.clear()
        for _ in range(min(max_devices, len(self.devices))):
            out.append(self.devices.popitem(last=False)[1])
        if not (self.alarms or self.devices):
            self.ready.clear()
        return out

    async def next(self) -> list[Message]:
        """The next messages, alarms first; waits while there are none (or while device
        messages must wait for their rate). Raises `SubscriberTooSlow` once the alarm lane
        has overflowed."""
        loop = asyncio.get_running_loop()
        while True:
            if self.overflowed.is_set():
                raise SubscriberTooSlow
            now = loop.time()
            if self.refilled_at is not None:
                self.tokens = min(
                    DEVICE_BURST, self.tokens + (now - self.refilled_at) * self.device_rate
                )
            self.refilled_at = now
            allowed = int(self.tokens)
            batch = self.take(allowed)
            self.tokens -= min(allowed, sum(1 for m in batch if m.get("kind") == "device"))
            if batch:
                return batch
            if not self.devices:
                await self.ready.wait()
                continue
            # Device messages wait for the rate; an alarm (ready) ends the wait early.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), 1.0 / self.device_rate)


class SubscriberTooSlow(Exception):
    pass


class LiveHub:
    QUEUE_SIZE = 1000  # alarm messages waiting for one subscriber

    def __init__(self, device_view: Callable[[DeviceRef], Message | None]) -> None:
        self._subscribers: set[Subscriber] = set()
        self._dirty: set[DeviceRef] = set()
        self._device_view = device_view
        self.disconnected_slow = 0
        self.coalesced_device_updates = 0

    def subscribe(self, sites: frozenset[str] | None) -> Subscriber:
        sub = Subscriber(sites, self.QUEUE_SIZE)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def alarm_changed(self, site: str, message: Message) -> None:
        self.push(site, message)

    def push(self, site: str, message: Message) -> None:
        """A message about one site to every subscriber of that site, never dropped: a
        subscriber too slow to take it is disconnected (it reconnects to a fresh snapshot)."""
        for sub in list(self._subscribers):
            if not sub.wants(site):
                continue
            if len(sub.alarms) >= sub.max_alarms:
                self.disconnected_slow += 1
                sub.overflowed.set()
                sub.ready.set()
                self._subscribers.discard(sub)
                continue
            sub.alarms.append(message)
            sub.ready.set()

    def device_changed(self, ref: DeviceRef) -> None:
        if self._subscribers:
            self._dirty.add(ref)

    def flush_devices(self) -> None:
        for _ in self.flushing():
            pass

    def flushing(self, chunk: int = 200) -> Iterator[None]:
        """Hand every dirty device's newest view to its subscribers; yields after every
        `chunk` devices (a view costs about 12 µs: thousands at once would hold the loop)."""
        dirty, self._dirty = self._dirty, set()
        for i, ref in enumerate(dirty):
            if i % chunk == chunk - 1:
                yield
            view = self._device_view(ref)
            if view is None:
                continue
            message = {"kind": "device", "device": view}
            for sub in self._subscribers:
                if sub.wants(ref.site):
                    if ref in sub.devices:
                        self.coalesced_device_updates += 1  # the browser gets the newest
                    sub.devices[ref] = message
                    sub.ready.set()

    async def run_flusher(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            for _ in self.flushing():
                await asyncio.sleep(0)
