"""Backlog replay: live readings first while the persistent session drains.

The bulk telemetry session is persistent (clean_session false), so that nothing devices
publish while the gateway is down or cut off is lost: the broker queues it. After a restart
that queue may hold minutes of readings, and the broker delivers them in order, so a gas
reading published *now* would reach the rules only after the whole backlog. While the bulk
session catches up, a second, clean-session connection subscribes to the same topics and
delivers what is published from then on at once. Every message published after it
subscribed therefore arrives twice, once on each connection, in either order (two TCP
streams are not ordered with each other).

`CatchUp` recognises the second copy by its bytes (topic and payload, which the broker
passes on unchanged), whichever connection brings it: the live connection's copies wait in
a multiset until the bulk session brings theirs; the bulk session's copies wait
`recent_s` in case the live twin is still on its way. The second copy is dropped.

`behind` is true from the start of catch-up until the bulk session brings its first
message that also came live (or goes idle): until then, a bulk message that never came live
was published before the live connection subscribed, so it is older than anything live
from the same device: the caller lets it update history but not roll the rules back.

Catch-up ends when the bulk session delivers a duplicate less than `lag_s` after the live
one (it has reached the present), or has delivered nothing for `idle_s` (there was no
backlog), or when the live copies exceed `max_entries` (memory bound: the live connection
closes and the rest waits its turn in the bulk session). Duplicates still queued behind the
end are recognised for `tail_s` more.

Pure: the caller passes the time (monotonic).
"""

from __future__ import annotations

import collections
from enum import Enum

Key = tuple[bytes, bytes]


class Delivery(Enum):
    """How a message reached the gateway, for the one decision that depends on it."""

    CURRENT = "current"  # the only path (control and bulk sessions outside catch-up)
    LIVE = "live"  # the clean-session connection during catch-up: the newest there is
    BACKLOG = "backlog"  # bulk while behind, not seen live: older than every LIVE one


class Verdict(Enum):
    DUPLICATE = "duplicate"  # the other connection brought it first: drop
    LIVE = "live"
    BACKLOG = "backlog"
    CURRENT = "current"

    @property
    def delivery(self) -> Delivery:
        return _DELIVERY[self]


_DELIVERY = {
    Verdict.LIVE: Delivery.LIVE,
    Verdict.BACKLOG: Delivery.BACKLOG,
    Verdict.CURRENT: Delivery.CURRENT,
}


class CatchUp:
    def __init__(
        self,
        *,
        lag_s: float = 0.5,
        idle_s: float = 1.0,
        recent_s: float = 5.0,
        max_entries: int = 200_000,
        tail_s: float = 10.0,
    ) -> None:
        self.lag_s = lag_s
        self.idle_s = idle_s
        self.recent_s = recent_s
        self.max_entries = max_entries
        self.tail_s = tail_s
        self.active = False  # the live connection is wanted
        self.behind = False  # the bulk session has not reached the live era yet
        self.ended_at: float | None = None
        self.end_reason: str | None = None
        # live copies waiting for their bulk twin: key -> [(receipt time, ack token)]
        self._live: dict[Key, list[tuple[float, int | None]]] = {}
        self._live_count = 0
        # bulk copies of the last `recent_s`, in case their live twin is still coming
        self._bulk: collections.Counter[Key] = collections.Counter()
        self._bulk_order: collections.deque[tuple[float, Key]] = collections.deque()
        self._last_bulk_at: float | None = None
        # for health and the benchmark
        self.live_messages = 0
        self.duplicates = 0
        self.backlog_messages = 0
        self.catchups = 0

    @property
    def pending(self) -> int:
        """Copies whose twin has not arrived yet."""
        return self._live_count + len(self._bulk_order)

    @property
    def full(self) -> bool:
        return self._live_count >= self.max_entries

    def begin(self) -> None:
        self.active = True
        self.behind = True
        self.ended_at = None
        self.end_reason = None
        self._live.clear()
        self._live_count = 0
        self._bulk.clear()
        self._bulk_order.clear()
        self._last_bulk_at = None
        self.catchups += 1

    def bulk_connected(self, now: float) -> None:
        """The bulk session is up: its silence counts from now."""
        self._last_bulk_at = now

    def live(self, key: Key, now: float, token: int | None = None) -> Verdict:
        """A message from the live connection. Not a duplicate: call `handled_live` with
        the ack token it was handled under (its bulk twin is acknowledged only when that
        token is durable)."""
        if self._bulk.get(key):
            self._bulk[key] -= 1
            if not self._bulk[key]:
                del self._bulk[key]
            self.duplicates += 1
            self.behind = False
            self.end(now, "the bulk session was ahead of the live connection")
            return Verdict.DUPLICATE
        return Verdict.LIVE

    def handled_live(self, key: Key, now: float, token: int | None) -> None:
        self.live_messages += 1
        copies = self._live.get(key)
        if copies is None:
            self._live[key] = [(now, token)]
        else:
            copies.append((now, token))
        self._live_count += 1

    def bulk(self, key: Key, now: float) -> tuple[Verdict, int | None]:
        """A message from the bulk session, and for a duplicate its live twin's token."""
        self._last_bulk_at = now
        self._forget_old_bulk(now)
        if self._live_count:
            copies = self._live.get(key)
            if copies:
                live_at, token = copies.pop(0)
                if not copies:
                    del self._live[key]
                self._live_count -= 1
                self.duplicates += 1
                self.behind = False
                if self.active and now - live_at <= self.lag_s:
                    self.end(now, f"the bulk session is within {self.lag_s:g} s of live")
                return Verdict.DUPLICATE, token
        if self.active:
            self._bulk[key] += 1
            self._bulk_order.append((now, key))
        if self.behind:
            self.backlog_messages += 1
            return Verdict.BACKLOG, None
        return Verdict.CURRENT, None

    def _forget_old_bulk(self, now: float) -> None:
        order = self._bulk_order
        cutoff = now - self.recent_s
        while order and order[0][0] < cutoff:
            _, key = order.popleft()
            left = self._bulk.get(key, 0) - 1
            if left > 0:
                self._bulk[key] = left
            else:
                self._bulk.pop(key, None)

    def poll(self, now: float) -> str | None:
        """Called periodically: why the live connection should close now, or None."""
        self._forget_old_bulk(now)
        ended = self.ended_at
        settled = not (self.active or self.behind) and ended is not None
        if self._live_count and settled and now - (ended or now) >= self.tail_s:
            # Live copies whose twins never came: the broker dropped them (QoS 0).
            self._live.clear()
            self._live_count = 0
        quiet_since = self._last_bulk_at
        if not (self.active or self.behind) or quiet_since is None:
            return None  # nothing to end, or the bulk session is not connected yet
        if now - quiet_since < self.idle_s:
            return None
        self.behind = False  # the bulk session delivered all it had queued
        return f"the bulk session was idle for {self.idle_s:g} s" if self.active else None

    def end(self, now: float, reason: str, *, reached_present: bool = True) -> None:
        """No more live copies. `reached_present`: the bulk session has delivered its
        backlog (false when the window overflowed or the live connection failed: what the
        bulk session brings next is still backlog, until its first duplicate)."""
        if reached_present:
            self.behind = False
        if self.active:
            self.active = False
            self.ended_at = now
            self.end_reason = reason
