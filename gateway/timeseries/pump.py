"""The pump: moves points from the memory buffer to the server or to the outbox, and from
the outbox to the server, one step at a time, each when it is due.

- Normally a batch goes from memory to the server when `batch_size` points are buffered or
  the oldest has waited `flush_interval`. Behind (a burst), a request carries up to
  `Limits.max_request_points`: the cost of a request is mostly per request, and the
  writer's worker thread competes for the interpreter with ingestion.
- When the server takes points more slowly than they come, nothing is dropped: past
  `Limits.soft_points` in memory the buffer goes to the outbox, and is replayed in order
  from there.
- While the server is unreachable, the batch and everything buffered go to the outbox, in
  order, and from then on every new point goes through the outbox behind them until it is
  drained, so the server receives points in the order they were produced.
- Points dropped for room (in memory or in the outbox) are counted here, and logged once
  per episode: until the outbox drains, or the memory buffer keeps up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from gateway.config.schema import InfluxSection
from gateway.timeseries.buffer import DROP_ORDER, MemoryBuffer
from gateway.timeseries.outbox import Outbox, OutboxError
from gateway.timeseries.writer import ServerWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    soft_points: int  # in memory beyond this, the buffer goes to the outbox
    max_request_points: int  # the largest request while behind


class Pump:
    def __init__(
        self,
        settings: InfluxSection,
        buffer: MemoryBuffer,
        outbox: Outbox,
        writer: ServerWriter,
        wake: asyncio.Event,
        limits: Limits,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self._buffer = buffer
        self._outbox = outbox
        self._writer = writer
        self._wake = wake  # set by the enqueue path: new points may make a step due
        # counters (since this process started; the outbox contents persist)
        self.replayed = 0
        self.spilled = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_ORDER, 0)
        self._overflow_episode = 0

    def _buffer_due_at(self, now: float) -> float | None:
        """When the buffer should be written or stored (≤ now: at once), None if empty."""
        oldest = self._buffer.oldest_at()
        if oldest is None:
            return None
        if len(self._buffer) >= self.settings.batch_size:
            return now
        return oldest + self.settings.flush_interval

    def _next_due(self, now: float) -> float | None:
        """Seconds until the next step is due (0: now), or None: wait for points."""
        waits: list[float] = []
        server_due = self._writer.due(now)
        if self._outbox.points:
            if server_due:
                return 0.0
            retry_at = self._writer.retry_at
            assert retry_at is not None
            waits.append(retry_at - now)
        due = self._buffer_due_at(now)
        if due is not None:
            if not (self._outbox.points == 0 and server_due):
                due = max(due, self._outbox.retry_at)  # it goes to the outbox
            waits.append(due - now)
        return max(0.0, min(waits)) if waits else None

    async def wait_for_work(self) -> None:
        while True:
            self._wake.clear()
            wait = self._next_due(time.monotonic())
            if wait == 0.0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def step(self) -> None:
        now = time.monotonic()
        disk_due = now >= self._outbox.retry_at
        if self._outbox.points == 0 and self._writer.due(now):
            due = self._buffer_due_at(now)
            if len(self._buffer) >= self.limits.soft_points and disk_due:
                # The server takes less than comes: keep the rest on disk, in order.
                await self._spill()
            elif due is not None and due <= now:
                await self._send_from_memory(spill_on_failure=True)
            return
        # Degraded: new points queue up behind the outbox, which is replayed in order.
        due = self._buffer_due_at(now)
        if due is not None and due <= now and disk_due:
            await self._spill()
        if self._outbox.points and self._writer.due(time.monotonic()):
            await self._replay()

    async def final_flush(self) -> None:
        """At close: one attempt to write what is buffered (bounded by `timeout`), the rest
        to the outbox."""
        if not self._buffer or not self._writer.is_open:
            return
        now = time.monotonic()
        if self._outbox.points == 0 and self._writer.due(now):
            deadline = now + self.settings.timeout
            while self._buffer and time.monotonic() < deadline:
                if not await self._send_from_memory(spill_on_failure=False):
                    break
        if self._buffer and self._outbox.is_open:
            await self._spill()
        if self._buffer:
            log.warning(
                "time-series feed: %d points could not be written nor stored at close",
                len(self._buffer),
            )

    # ----------------------------------------------------------- moving points
    async def _send_from_memory(self, spill_on_failure: bool) -> bool:
        """One batch from the buffer; False if the server was unreachable."""
        batch = self._buffer.peek(self._request_size(len(self._buffer)))
        if not batch:
            return True
        done, _ = await self._writer.deliver([item[3] for item in batch])
        if done:
            self._buffer.remove_through(batch[done - 1][0])
        if done == len(batch):
            if self._outbox.points == 0:
                self._end_overflow_episode()  # the memory buffer kept up again
            return True
        if spill_on_failure:
            await self._spill()  # the rest of the batch is still at the head of the buffer
        return False

    async def _replay(self) -> None:
        try:
            rows = await self._outbox.oldest(self._request_size(self._outbox.points))
        except OutboxError:
            self._writer.hold_until(self._outbox.retry_at)  # not the server, but wait as long
            return
        if not rows:
            return
        done, written = await self._writer.deliver([row[2] for row in rows])
        if not done:
            return
        try:
            await self._outbox.remove(rows[:done])
        except OutboxError:
            return  # written but still in the outbox: sent again later (at least once)
        self.replayed += written
        if self._outbox.points == 0:
            self._end_overflow_episode()

    async def _spill(self) -> None:
        """Move the whole buffer to the outbox, in order, in one transaction."""
        items = self._buffer.peek(len(self._buffer))
        if not self._outbox.is_open or not items:
            return
        try:
            dropped = await self._outbox.store(items)
        except OutboxError:
            return
        self._buffer.remove_through(items[-1][0])
        self.spilled += len(items)
        for kind, n in dropped.items():
            if n:
                self.count_drop(kind, n, where="outbox")

    def _request_size(self, waiting: int) -> int:
        """`batch_size`, or more while behind: as many as wait, up to `max_request_points`."""
        size = self.settings.batch_size
        return min(max(size, waiting), max(size, self.limits.max_request_points))

    def count_drop(self, kind: str, n: int, where: str) -> None:
        self.dropped[kind] += n
        if self._overflow_episode == 0:
            log.warning(
                "time-series feed: %s full; dropping the oldest %s points (alarm points are "
                "kept); logged once until the outbox drains",
                "outbox" if where == "outbox" else "memory buffer",
                kind,
            )
        self._overflow_episode += n

    def _end_overflow_episode(self) -> None:
        if self._overflow_episode:
            log.warning(
                "time-series feed: %d points were dropped while the server was away",
                self._overflow_episode,
            )
            self._overflow_episode = 0
