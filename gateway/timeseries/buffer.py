"""The memory buffer: points formatted but neither written nor in the outbox yet.

Also the three kinds of point, and which of them give way when the buffer or the outbox
is full: the buffer and the outbox apply the same order.
"""

from __future__ import annotations

import collections
import itertools
from typing import Final

KIND_READING: Final = "reading"
KIND_ALARM: Final = "alarm"
KIND_STATUS: Final = "status"
KINDS: Final = (KIND_READING, KIND_ALARM, KIND_STATUS)
# Which points give way when the outbox (or the memory buffer) is full, in this order.
# Alarm points never do: they are few, and they are what the bureau is for.
DROP_ORDER: Final = (KIND_READING, KIND_STATUS)

# (sequence, monotonic time appended, kind, line)
Item = tuple[int, float, str, str]


class MemoryBuffer:
    """Points not yet written nor in the outbox, in production order.

    One deque per kind (merged by sequence number when read), so that dropping the oldest
    reading when full is O(1) on the enqueue path instead of a scan.
    """

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self._queues: dict[str, collections.deque[Item]] = {k: collections.deque() for k in KINDS}
        self._seq = itertools.count(1)
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def append(self, kind: str, line: str, at: float) -> str | None:
        """Append; returns the kind of the point dropped to make room, if any."""
        self._queues[kind].append((next(self._seq), at, kind, line))
        self._len += 1
        if self._len <= self.max_points:
            return None
        for victim in DROP_ORDER:
            queue = self._queues[victim]
            if queue:
                queue.popleft()
                self._len -= 1
                return victim
        return None  # only alarm points: keep them all

    def oldest_at(self) -> float | None:
        heads = [q[0] for q in self._queues.values() if q]
        return min(heads)[1] if heads else None

    def peek(self, n: int) -> list[Item]:
        """The oldest `n` points, oldest first, left in place."""
        busy = [q for q in self._queues.values() if q]
        if len(busy) == 1:  # the usual case in a burst: readings only, no merge needed
            return list(itertools.islice(busy[0], n))
        # The oldest n of the whole buffer are among the oldest n of each queue; sorting
        # those in C is much faster than a merge generator over thousands of points.
        heads = [item for q in busy for item in itertools.islice(q, n)]
        heads.sort()
        return heads[:n]

    def remove_through(self, seq: int) -> None:
        """Remove every point up to sequence `seq` (after they were written or stored).

        By sequence rather than by count: points dropped meanwhile to make room are gone
        already, and points appended meanwhile have higher numbers."""
        for queue in self._queues.values():
            while queue and queue[0][0] <= seq:
                queue.popleft()
                self._len -= 1
