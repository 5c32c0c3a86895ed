"""The link's health: each lane up or down, logged once per change, and reconnection pacing.

A lane (control, bulk, live) is one broker connection; `LaneMonitor` is told when each comes
up or goes down and keeps `LinkHealth`, the figures the gateway reports: the link is
connected while every required lane is (control, and bulk if there is one). A failure is
logged when a lane is lost, later failed attempts only counted; a recovery is logged once.
Between attempts a lane waits a capped, jittered, exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CONTROL, BULK, LIVE = "control", "bulk", "live"


@dataclass(slots=True)
class LinkHealth:
    """The link as a whole: connected while the control lane (and the bulk lane, if any)
    is up. `reconnects` counts the link's recoveries from an outage, `lane_reconnects` each
    lane's reconnections (a lane can be lost alone)."""

    connected: bool = False
    connected_since: float | None = None
    disconnected_since: float | None = None
    connects: int = 0
    reconnects: int = 0
    failed_attempts: int = 0
    last_error: str | None = None
    lane_reconnects: dict[str, int] = field(default_factory=dict)
    received: int = 0  # handed to the handler (duplicates of catch-up not counted)
    published: int = 0  # acknowledged by the broker (QoS 1) or written (QoS 0)
    lanes: dict[str, bool] = field(default_factory=dict)


class LaneMonitor:
    def __init__(
        self,
        host: str,
        port: int,
        required: tuple[str, ...],
        backoff_initial_s: float,
        backoff_max_s: float,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.health = LinkHealth()
        self.host = host
        self.port = port
        self._required = required
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._on_change = on_change
        self._up: dict[str, bool] = {}
        self._down_since: dict[str, float] = {}
        self._reason: dict[str, str] = {}  # what the lane's last logged failure said
        # Set by the link's stop: a lane that ends now is not a failure, and is not retried.
        self.stopping = False

    async def backoff(self, lane: str, failures: int) -> None:
        self.set_up(lane, False)
        if self.stopping:
            raise asyncio.CancelledError
        delay = min(self._backoff_max_s, self._backoff_initial_s * 2 ** min(failures, 10))
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def set_up(self, lane: str, up: bool) -> None:
        was = self._up.get(lane)
        self._up[lane] = up
        h = self.health
        h.lanes = dict(self._up)
        if up:
            if was is False:
                h.lane_reconnects[lane] = h.lane_reconnects.get(lane, 0) + 1
                log.warning(
                    "MQTT %s lane reconnected to %s:%s after %.1f s",
                    lane,
                    self.host,
                    self.port,
                    time.monotonic() - self._down_since.pop(lane, time.monotonic()),
                )
            h.connects += 1
        connected = all(self._up.get(lane) for lane in self._required)
        if connected == h.connected:
            return
        now = time.time()
        h.connected = connected
        if connected:
            if h.disconnected_since is None:
                log.info("MQTT connected to %s:%s", self.host, self.port)
            else:
                h.reconnects += 1
            h.connected_since = now
            h.disconnected_since = None
            h.failed_attempts = 0
        else:
            h.disconnected_since = now
        if self._on_change:
            self._on_change(connected)

    def lane_down(self, lane: str, exc: Exception) -> None:
        if self.stopping:
            return
        h = self.health
        h.last_error = f"{lane}: {exc}"
        # Logged again only when the reason changes (the broker is back but now refuses
        # the certificate, say), so an operator reads what is wrong now.
        newly_down = self._up.get(lane) or lane not in self._down_since
        if newly_down or self._reason.get(lane) != str(exc):
            log.error(
                "MQTT %s connection to %s:%s lost or refused (%s); retrying with backoff",
                lane,
                self.host,
                self.port,
                exc,
            )
            if newly_down:
                self._down_since[lane] = time.monotonic()
            self._reason[lane] = str(exc)
        else:
            h.failed_attempts += 1
