"""Publications waiting for the control lane, in priority order, nothing dropped.

Publishing never waits for the broker: a publication is handed to paho at once, and paho
retries QoS 1 publications over the same session after a reconnect. Only while the control
lane is down do publications wait here: commands before alarms before the rest, in order of
arrival within a priority, and all of them are sent when the lane is back.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

PRIORITY_COMMAND = 0
PRIORITY_ALARM = 1
PRIORITY_INFO = 2
PRIORITY_LAST = 9  # the clean stop's `offline` presence: after everything else


@dataclass(frozen=True, slots=True)
class Publication:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


# The control connection's `publish(topic, payload, qos, retain)`: False when it is down.
Send = Callable[[str, bytes, int, bool], bool]


class Outbox:
    def __init__(self, send: Send) -> None:
        self._send = send
        self._heap: list[tuple[int, int, Publication]] = []  # (priority, seq, pub)
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def publish(self, pub: Publication, priority: int) -> None:
        """Send, or queue while the lane is down (or others still wait: order is kept)."""
        if not self._heap and self._send(pub.topic, pub.payload, pub.qos, pub.retain):
            return
        heapq.heappush(self._heap, (priority, next(self._seq), pub))

    def drain(self) -> None:
        """Send what waits, best priority first, until the lane refuses."""
        while self._heap:
            _, _, pub = self._heap[0]
            if not self._send(pub.topic, pub.payload, pub.qos, pub.retain):
                return
            heapq.heappop(self._heap)
