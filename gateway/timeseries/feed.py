"""`TimeSeriesFeed`: the time-series feed to the county bureau's InfluxDB-compatible server
(DESIGN section 9), and the one object the rest of the gateway sees of it.

Its parts: what goes out is line protocol (`lines`); points wait in memory (`buffer`), and
on disk when they must (`outbox`); the `pump` moves them, each step when it is due; the
`writer` talks to the server and reads its answers. This module owns the enqueue path, the
life cycle (open, run, close) and the figures (`stats`).

`reading`, `alarm` and `device_status` only format a line and append it to the memory
buffer: they never wait and never raise (a point that cannot be encoded is logged once and
counted). Ingestion and alarms must never wait on the bureau. Call them on the loop thread.
Past `MEMORY_MAX_POINTS` in memory (only while the outbox cannot be written either, a full
disk) the oldest readings are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.alarms.event import AlarmEvent
from gateway.config.schema import InfluxSection
from gateway.timeseries.buffer import KIND_ALARM, KIND_READING, KIND_STATUS, MemoryBuffer
from gateway.timeseries.lines import (
    alarm_line,
    epoch_ms,
    escape_key,
    reading_head,
    reading_line_under,
    status_head,
    status_line_under,
)
from gateway.timeseries.outbox import Outbox
from gateway.timeseries.pump import Limits, Pump
from gateway.timeseries.writer import DEFAULT_BACKOFF, Backoff, ServerWriter
from rules.model import Reading

log = logging.getLogger(__name__)


class TimeSeriesFeed:
    # Tunables, read at open() (a test may change them on the instance before), except
    # MEMORY_MAX_POINTS, read when the feed is made.
    BACKOFF_INITIAL_S = DEFAULT_BACKOFF.initial_s
    BACKOFF_MAX_S = DEFAULT_BACKOFF.max_s
    RETRY_AFTER_MAX_S = DEFAULT_BACKOFF.retry_after_max_s
    # Points normally pass through memory for at most a request's time. Past the soft bound
    # (the writer is behind) they go to the outbox; the hard bound holds while the outbox
    # cannot be written, and beyond it the oldest readings are dropped (counted).
    MEMORY_SOFT_POINTS = 100_000
    MEMORY_MAX_POINTS = 300_000
    MAX_REQUEST_POINTS = 20_000

    def __init__(
        self,
        settings: InfluxSection,
        token: str | None,
        outbox_path: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock  # wall clock: fallback point times and the times in stats()
        self._buffer = MemoryBuffer(min(settings.outbox_max_points, self.MEMORY_MAX_POINTS))
        self._wake = asyncio.Event()
        self._outbox = Outbox(outbox_path, settings.outbox_max_points, self._buffer.max_points)
        self._writer = ServerWriter(settings, token, self._outbox, clock)
        self._pump = Pump(
            settings,
            self._buffer,
            self._outbox,
            self._writer,
            self._wake,
            Limits(self.MEMORY_SOFT_POINTS, self.MAX_REQUEST_POINTS),
        )
        self._run_task: asyncio.Task[None] | None = None
        self._step_task: asyncio.Future[None] | None = None
        self._closed = False
        self.encode_errors = 0  # since this process started
        # line-protocol pieces made once: device -> (type, series key); field names
        self._heads: dict[Any, tuple[str, str]] = {}
        self._fields: dict[str, str] = {}
        self.status_heads: dict[tuple[str, str], str] = {}
        self._logged_encode: set[str] = set()  # what was logged once already

    # --------------------------------------------------------------- enqueue (sync)
    def reading(self, r: Reading, device_type: str) -> None:
        # The hot path of a burst: the series key of a device and the escaped field names
        # are made once, not per point.
        try:
            head = self._heads.get(r.ref)
            if head is None or head[0] != device_type:
                head = self._heads[r.ref] = (device_type, reading_head(r, device_type))
            line = reading_line_under(head[1], r, self._field)
        except Exception:  # noqa: BLE001 - logged once inside; the caller must never see it
            self._encode_failed("reading", r)
            return
        if line is not None:
            self._append(KIND_READING, line)

    def _field(self, name: str) -> str:
        escaped = self._fields.get(name)
        if escaped is None:
            escaped = self._fields[name] = escape_key(name)
        return escaped

    def alarm(self, event: AlarmEvent) -> None:
        a = event.alarm
        try:
            try:
                at_ms = epoch_ms(a.updated_at)
            except ValueError:
                # An alarm point at the wrong time is worth more than none.
                at_ms = epoch_ms(self._clock())
                self._log_encode_once("alarm_time", "alarm without usable updated_at: %r", a)
            line = alarm_line(a, at_ms)
        except Exception:  # noqa: BLE001 - logged once inside; the caller must never see it
            self._encode_failed("alarm", a)
            return
        self._append(KIND_ALARM, line)

    def device_status(self, site: str, device: str, online: bool, fault: bool, at: float) -> None:
        try:
            head = self.status_heads.get((site, device))
            if head is None:
                head = self.status_heads[(site, device)] = status_head(site, device)
            line = status_line_under(head, online, fault, at)
        except Exception:  # noqa: BLE001 - logged once inside; the caller must never see it
            self._encode_failed("device_status", (site, device, online, fault, at))
            return
        self._append(KIND_STATUS, line)

    def _append(self, kind: str, line: str) -> None:
        buf = self._buffer
        dropped = buf.append(kind, line, time.monotonic())
        if dropped is not None:
            self._pump.count_drop(dropped, 1, where="memory")
        n = len(buf)
        if n in (1, self.settings.batch_size, self.MEMORY_SOFT_POINTS):
            self._wake.set()  # a new flush deadline, a full batch, or time to spill

    def _encode_failed(self, what: str, obj: object) -> None:
        self.encode_errors += 1
        if what not in self._logged_encode:
            self._logged_encode.add(what)
            log.exception("time-series feed: cannot encode %s %r (logged once)", what, obj)

    def _log_encode_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._logged_encode:
            self._logged_encode.add(key)
            log.warning("time-series feed: " + msg + " (logged once)", *args)

    # ------------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Open the outbox (points left by an earlier run are replayed first) and the client."""
        await self._outbox.open()
        self._writer.open(
            Backoff(self.BACKOFF_INITIAL_S, self.BACKOFF_MAX_S, self.RETRY_AFTER_MAX_S)
        )
        self._pump.limits = Limits(self.MEMORY_SOFT_POINTS, self.MAX_REQUEST_POINTS)

    async def run(self) -> None:
        """Write batches until cancelled.

        Each step (a write, a spill to the outbox, a replay) runs shielded: a cancel lands
        between steps as far as the state is concerned, and `close()` waits for a step that
        was under way. Nothing leaves the buffer or the outbox before the server or the
        disk has confirmed it."""
        if not self._outbox.is_open or not self._writer.is_open:
            raise RuntimeError("TimeSeriesFeed.open() first")
        self._run_task = asyncio.current_task()
        while True:
            await self._pump.wait_for_work()
            step = asyncio.ensure_future(self._pump.step())
            self._step_task = step
            await asyncio.shield(step)
            self._step_task = None

    async def close(self) -> None:
        """Stop the writer, then send what is buffered (one attempt, bounded by `timeout`);
        what the server does not take goes to the outbox."""
        if self._closed:
            return
        self._closed = True
        run = self._run_task
        if run is not None and not run.done() and run is not asyncio.current_task():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
        step = self._step_task
        if step is not None and not step.done():
            try:
                await asyncio.wait_for(asyncio.shield(step), self.settings.timeout + 5.0)
            except TimeoutError:
                step.cancel()
                log.warning("time-series feed: a write still under way at close was abandoned")
            except Exception:
                log.exception("time-series feed: the last step failed at close")
        try:
            await self._pump.final_flush()
        except Exception:
            log.exception("time-series feed: final flush failed; %d points lost", len(self._buffer))
        finally:
            await self._outbox.close()
            await self._writer.close()

    # ---------------------------------------------------------------------- stats
    @property
    def outbox_points(self) -> int:
        return self._outbox.points

    @property
    def written(self) -> int:
        return self._writer.written

    @property
    def batches(self) -> int:
        return self._writer.batches

    @property
    def rejected(self) -> int:
        return self._writer.rejected

    @property
    def replayed(self) -> int:
        return self._pump.replayed

    @property
    def spilled(self) -> int:
        return self._pump.spilled

    @property
    def dropped(self) -> dict[str, int]:
        return self._pump.dropped

    def stats(self) -> dict[str, Any]:
        w, pump = self._writer, self._pump
        outbox = self._outbox.counts
        return {
            "connected": w.connected,
            "last_error": w.last_error,
            "down_since": w.down_since,
            "last_write_at": w.last_write_at,
            "buffered": len(self._buffer),
            "outbox_points": self.outbox_points,
            "outbox": {
                "readings": outbox[KIND_READING],
                "alarms": outbox[KIND_ALARM],
                "status": outbox[KIND_STATUS],
            },
            "outbox_error": self._outbox.error,
            "written": w.written,
            "batches": w.batches,
            "replayed": pump.replayed,
            "spilled": pump.spilled,
            "rejected": w.rejected,
            "dropped_readings": pump.dropped[KIND_READING],
            "dropped_status": pump.dropped[KIND_STATUS],
            "encode_errors": self.encode_errors,
        }
