"""The time-series feed to the county bureau's InfluxDB-compatible server (DESIGN section 9).

Three measurements, written as line protocol through influxdb-client's v2 write API
(`/api/v2/write`, precision ms):

- `reading`: tags site, device, type; one float field per quantity; time = the reading's.
- `alarm`: tags site, device, alarm_type, severity; fields state (string), state_code
  (integer: closed 0, cleared 1, active 2), acked (integer 0/1), value (float, when the alarm
  has one), alarm_id (string); time = the snapshot's `updated_at`. VictoriaMetrics (which
  some bureaus run) keeps numbers only: version 1.79 stores a string field as the value 0,
  so `state` and `alarm_id` are unreadable there, and the integer fields carry what matters.
- `device_status`: tags site, device; fields online and fault, integers 0/1 rather than
  booleans, so that a dashboard can sum them (devices online per site) on either server.

How points travel:

- `reading`, `alarm` and `device_status` only format a line and append it to a memory
  buffer: they never wait and never raise (a point that cannot be encoded is logged once and
  counted). Ingestion and alarms must never wait on the bureau. Call them on the loop thread.
- `run` writes a batch when `batch_size` points are buffered or the oldest has waited
  `flush_interval`; one request at a time, the synchronous influxdb-client in a worker
  thread (its asyncio client needs aiohttp, which this project does not ship). Behind (a
  burst), a request carries up to `MAX_REQUEST_POINTS`: the cost of a request is mostly
  per request, and the worker thread competes for the interpreter with ingestion.
- When the server takes points more slowly than they come, nothing is dropped: past
  `MEMORY_SOFT_POINTS` in memory the buffer goes to the outbox (below), and is replayed in
  order from there. Only when the outbox cannot be written either (full disk) do points
  wait in memory, up to `MEMORY_MAX_POINTS`, oldest readings dropped beyond.
- Unreachable (connection errors, timeouts, 5xx, 429, and also 401/403/404, which a person
  has to fix while the data is worth keeping): the batch and everything buffered go to a
  SQLite outbox, in order, and from then on every new point goes through the outbox behind
  them until it is drained, so the server receives points in the order they were produced,
  across gateway restarts too. Retries back off exponentially up to `BACKOFF_MAX_S`,
  honouring Retry-After.
- Rejected (400 malformed, 422 unprocessable e.g. a field type conflict, 413 too large):
  retrying the same batch would fail forever, and one bad point must not take the good ones
  with it. The batch is split in halves until the rejected points stand alone; each is then
  dropped, counted (`rejected`) and logged once per episode. Resending the halves that an
  InfluxDB partial write had already accepted is harmless: the same point (series and time)
  overwrites itself.
- The outbox holds at most `outbox_max_points`: beyond that the oldest readings go first,
  then the oldest status points; alarm points are never dropped (so with nothing else left,
  alarms alone may exceed the bound). Drops are counted and logged once per episode.

Delivery is at least once: a write whose answer was lost (a timeout after the server had
stored it) is sent again. InfluxDB overwrites an identical point; VictoriaMetrics keeps both
samples unless started with `-dedup.minScrapeInterval`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiosqlite
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from gateway.alarms.event import AlarmEvent
from gateway.config.schema import InfluxSection
from gateway.timeseries.lines import (
    alarm_line,
    epoch_ms,
    escape_key,
    reading_head,
    reading_line_under,
    status_head,
    status_line_under,
)
from rules.model import Reading

log = logging.getLogger(__name__)

KIND_READING: Final = "reading"
KIND_ALARM: Final = "alarm"
KIND_STATUS: Final = "status"
KINDS: Final = (KIND_READING, KIND_ALARM, KIND_STATUS)
# Which points give way when the outbox (or the memory buffer) is full, in this order.
# Alarm points never do: they are few, and they are what the bureau is for.
_DROP_ORDER: Final = (KIND_READING, KIND_STATUS)

# Every line carries a millisecond timestamp: device clocks and `updated_at` are no finer,
# VictoriaMetrics stores milliseconds, and one precision serves every request (a batch
# mixes measurements, and the outbox keeps lines written by an earlier run).
PRECISION: Final = WritePrecision.MS

# Statuses after which the same batch would fail again: split it to isolate the bad points.
_REJECTED_STATUSES: Final = frozenset({400, 413, 422})

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never reused, so id order is
                                           -- production order even after the table empties
    kind TEXT NOT NULL CHECK (kind IN ('reading', 'alarm', 'status')),
    line TEXT NOT NULL
);
-- the overflow rule deletes the oldest points of one kind
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind);
"""


# ------------------------------------------------------------------ memory buffer
# (sequence, monotonic time appended, kind, line)
_Item = tuple[int, float, str, str]


class _Buffer:
    """Points not yet written nor in the outbox, in production order.

    One deque per kind (merged by sequence number when read), so that dropping the oldest
    reading when full is O(1) on the enqueue path instead of a scan.
    """

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self._queues: dict[str, collections.deque[_Item]] = {k: collections.deque() for k in KINDS}
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
        for victim in _DROP_ORDER:
            queue = self._queues[victim]
            if queue:
                queue.popleft()
                self._len -= 1
                return victim
        return None  # only alarm points: keep them all

    def oldest_at(self) -> float | None:
        heads = [q[0] for q in self._queues.values() if q]
        return min(heads)[1] if heads else None

    def peek(self, n: int) -> list[_Item]:
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


# ------------------------------------------------------------------------ the feed
@dataclass(frozen=True, slots=True)
class _Unreachable:
    error: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class _Rejected:
    status: int
    detail: str


class TimeSeriesFeed:
    BACKOFF_INITIAL_S = 1.0
    BACKOFF_MAX_S = 60.0
    RETRY_AFTER_MAX_S = 300.0
    # Points normally pass through memory for at most a request's time. Past the soft bound
    # (the writer is behind) they go to the outbox; the hard bound holds while the outbox
    # cannot be written, and beyond it the oldest readings are dropped (counted).
    MEMORY_SOFT_POINTS = 100_000
    MEMORY_MAX_POINTS = 300_000
    MAX_REQUEST_POINTS = 20_000
    DISK_RETRY_S = 5.0  # after the outbox failed to write (disk full, locked)

    def __init__(
        self,
        settings: InfluxSection,
        token: str | None,
        outbox_path: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._token = token
        self._outbox_path = outbox_path
        self._clock = clock  # wall clock: fallback point times and the times in stats()
        self._buffer = _Buffer(min(settings.outbox_max_points, self.MEMORY_MAX_POINTS))
        self._wake = asyncio.Event()
        self._db: aiosqlite.Connection | None = None
        self._outbox: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._client: Any = None
        self._write_api: Any = None
        self._run_task: asyncio.Task[None] | None = None
        self._step_task: asyncio.Future[None] | None = None
        self._closed = False
        # server state
        self._connected: bool | None = None  # None: not tried yet
        self._last_error: str | None = None
        self._down_since: float | None = None
        self._last_write_at: float | None = None
        self._retry_at: float | None = None  # monotonic; None: the server is believed up
        self._failures = 0
        self._disk_retry_at = 0.0
        self._disk_error: str | None = None
        # counters (since this process started; the outbox contents persist)
        self.written = 0
        self.batches = 0
        self.replayed = 0
        self.spilled = 0
        self.rejected = 0
        self.dropped: dict[str, int] = dict.fromkeys(_DROP_ORDER, 0)
        self.encode_errors = 0
        # line-protocol pieces made once: device -> (type, series key); field names
        self._heads: dict[Any, tuple[str, str]] = {}
        self._fields: dict[str, str] = {}
        self.status_heads: dict[tuple[str, str], str] = {}
        # once-per-episode logging
        self._logged_encode: set[str] = set()
        self._overflow_episode = 0
        self._reject_episode = 0

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
            self._count_drop(dropped, 1, where="memory")
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
        self._outbox_path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self._outbox_path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: WAL commits survive a crash of the process, not a power cut; the
            # outbox is telemetry, and the memory buffer is lost in a crash anyway.
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.executescript(SCHEMA)
            await db.commit()
            rows = await db.execute_fetchall("SELECT kind, count(*) FROM outbox GROUP BY kind")
        except BaseException:
            await db.close()
            raise
        self._db = db
        for kind, count in rows:
            self._outbox[kind] = int(count)
        if self.outbox_points:
            log.info(
                "time-series feed: %d points in the outbox from an earlier run (%s); "
                "they are written first",
                self.outbox_points,
                ", ".join(f"{k} {n}" for k, n in self._outbox.items() if n),
            )
        s = self.settings
        self._client = InfluxDBClient(
            # "" sends no Authorization header (VictoriaMetrics needs none)
            url=s.url,
            token=self._token or "",
            org=s.org,
            timeout=int(s.timeout * 1000),
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    async def run(self) -> None:
        """Write batches until cancelled.

        Each step (a write, a spill to the outbox, a replay) runs shielded: a cancel lands
        between steps as far as the state is concerned, and `close()` waits for a step that
        was under way. Nothing leaves the buffer or the outbox before the server or the
        disk has confirmed it."""
        if self._db is None or self._write_api is None:
            raise RuntimeError("TimeSeriesFeed.open() first")
        self._run_task = asyncio.current_task()
        while True:
            await self._wait_for_work()
            step = asyncio.ensure_future(self._step())
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
            await self._final_flush()
        except Exception:
            log.exception("time-series feed: final flush failed; %d points lost", len(self._buffer))
        finally:
            if self._db is not None:
                await self._db.close()
                self._db = None
            if self._client is not None:
                await asyncio.to_thread(self._client.close)
                self._client = None
                self._write_api = None

    async def _final_flush(self) -> None:
        if not self._buffer or self._write_api is None:
            return
        now = time.monotonic()
        if self.outbox_points == 0 and (self._retry_at is None or now >= self._retry_at):
            deadline = now + self.settings.timeout
            while self._buffer and time.monotonic() < deadline:
                if not await self._send_from_memory(spill_on_failure=False):
                    break
        if self._buffer and self._db is not None:
            await self._spill()
        if self._buffer:
            log.warning(
                "time-series feed: %d points could not be written nor stored at close",
                len(self._buffer),
            )

    # ---------------------------------------------------------------------- stats
    @property
    def outbox_points(self) -> int:
        return sum(self._outbox.values())

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self._connected,
            "last_error": self._last_error,
            "down_since": self._down_since,
            "last_write_at": self._last_write_at,
            "buffered": len(self._buffer),
            "outbox_points": self.outbox_points,
            "outbox": {
                "readings": self._outbox[KIND_READING],
                "alarms": self._outbox[KIND_ALARM],
                "status": self._outbox[KIND_STATUS],
            },
            "outbox_error": self._disk_error,
            "written": self.written,
            "batches": self.batches,
            "replayed": self.replayed,
            "spilled": self.spilled,
            "rejected": self.rejected,
            "dropped_readings": self.dropped[KIND_READING],
            "dropped_status": self.dropped[KIND_STATUS],
            "encode_errors": self.encode_errors,
        }

    # --------------------------------------------------------------- the writer
    def _server_due(self, now: float) -> bool:
        return self._retry_at is None or now >= self._retry_at

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
        server_due = self._server_due(now)
        if self.outbox_points:
            if server_due:
                return 0.0
            assert self._retry_at is not None
            waits.append(self._retry_at - now)
        due = self._buffer_due_at(now)
        if due is not None:
            if not (self.outbox_points == 0 and server_due):
                due = max(due, self._disk_retry_at)  # it goes to the outbox
            waits.append(due - now)
        return max(0.0, min(waits)) if waits else None

    async def _wait_for_work(self) -> None:
        while True:
            self._wake.clear()
            wait = self._next_due(time.monotonic())
            if wait == 0.0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _step(self) -> None:
        now = time.monotonic()
        if self.outbox_points == 0 and self._server_due(now):
            due = self._buffer_due_at(now)
            if len(self._buffer) >= self.MEMORY_SOFT_POINTS and now >= self._disk_retry_at:
                # The server takes less than comes: keep the rest on disk, in order.
                await self._spill()
            elif due is not None and due <= now:
                await self._send_from_memory(spill_on_failure=True)
            return
        # Degraded: new points queue up behind the outbox, which is replayed in order.
        due = self._buffer_due_at(now)
        if due is not None and due <= now and now >= self._disk_retry_at:
            await self._spill()
        if self.outbox_points and self._server_due(time.monotonic()):
            await self._replay()

    async def _send_from_memory(self, spill_on_failure: bool) -> bool:
        """One batch from the buffer; False if the server was unreachable."""
        batch = self._buffer.peek(self._request_size(len(self._buffer)))
        if not batch:
            return True
        done, _ = await self._deliver([item[3] for item in batch])
        if done:
            self._buffer.remove_through(batch[done - 1][0])
        if done == len(batch):
            if self.outbox_points == 0:
                self._end_overflow_episode()  # the memory buffer kept up again
            return True
        if spill_on_failure:
            await self._spill()  # the rest of the batch is still at the head of the buffer
        return False

    async def _replay(self) -> None:
        db = self._require_db()
        try:
            rows = list(
                await db.execute_fetchall(
                    "SELECT id, kind, line FROM outbox ORDER BY id LIMIT ?",
                    (self._request_size(self.outbox_points),),
                )
            )
        except sqlite3.Error as exc:
            self._disk_failed(exc)
            self._retry_at = self._disk_retry_at  # not a server problem, but wait as long
            return
        if not rows:  # counts out of step with the table: trust the table
            self._outbox = dict.fromkeys(KINDS, 0)
            return
        done, written = await self._deliver([row[2] for row in rows])
        if not done:
            return
        try:
            await db.execute("DELETE FROM outbox WHERE id <= ?", (rows[done - 1][0],))
            await db.commit()
        except sqlite3.Error as exc:
            # Written but still in the outbox: sent again later (at least once).
            self._disk_failed(exc)
            return
        for row in rows[:done]:
            self._outbox[row[1]] -= 1
        self.replayed += written
        if self.outbox_points == 0:
            log.info("time-series feed: outbox drained")
            self._end_overflow_episode()

    async def _spill(self) -> None:
        """Move the whole buffer to the outbox, in order, in one transaction."""
        db = self._db
        items = self._buffer.peek(len(self._buffer))
        if db is None or not items:
            return
        added = dict.fromkeys(KINDS, 0)
        for item in items:
            added[item[2]] += 1
        counts = {k: self._outbox[k] + added[k] for k in KINDS}
        dropped = dict.fromkeys(_DROP_ORDER, 0)
        try:
            await db.executemany(
                "INSERT INTO outbox (kind, line) VALUES (?, ?)", [(i[2], i[3]) for i in items]
            )
            excess = sum(counts.values()) - self.settings.outbox_max_points
            for kind in _DROP_ORDER:
                if excess <= 0:
                    break
                cursor = await db.execute(
                    "DELETE FROM outbox WHERE id IN "
                    "(SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT ?)",
                    (kind, excess),
                )
                dropped[kind] = cursor.rowcount
                counts[kind] -= cursor.rowcount
                excess -= cursor.rowcount
            await db.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                await db.rollback()
            self._disk_failed(exc)
            return
        if self._disk_error is not None:
            log.info("time-series feed: the outbox can be written again")
            self._disk_error = None
        self._buffer.remove_through(items[-1][0])
        self._outbox = counts
        self.spilled += len(items)
        for kind, n in dropped.items():
            if n:
                self._count_drop(kind, n, where="outbox")

    def _request_size(self, waiting: int) -> int:
        """`batch_size`, or more while behind: as many as wait, up to MAX_REQUEST_POINTS."""
        size = self.settings.batch_size
        return min(max(size, waiting), max(size, self.MAX_REQUEST_POINTS))

    def _require_db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the outbox is not open")
        return self._db

    def _disk_failed(self, exc: sqlite3.Error) -> None:
        self._disk_retry_at = time.monotonic() + self.DISK_RETRY_S
        if self._disk_error is None:
            log.error(
                "time-series feed: cannot write the outbox (%s); points wait in memory "
                "(at most %d, oldest readings dropped beyond)",
                exc,
                self._buffer.max_points,
            )
        self._disk_error = str(exc)

    def _count_drop(self, kind: str, n: int, where: str) -> None:
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

    # --------------------------------------------------------------- the server
    async def _deliver(self, lines: list[str], top: bool = True) -> tuple[int, int]:
        """Write `lines`; returns (done, written): the leading `done` lines are settled,
        written or rejected for good; the rest were not sent because the server is away.

        A rejected batch is split in halves, left first, so that what is settled is always
        a prefix: the callers remove exactly that prefix."""
        outcome = await self._post(lines)
        if outcome is None:
            self.written += len(lines)
            self.batches += 1
            if top:
                self._end_reject_episode()
            return len(lines), len(lines)
        if isinstance(outcome, _Unreachable):
            return 0, 0
        if len(lines) == 1:
            self._rejected_point(outcome, lines[0])
            return 1, 0
        mid = len(lines) // 2
        left, left_written = await self._deliver(lines[:mid], top=False)
        if left < mid:
            return left, left_written
        right, right_written = await self._deliver(lines[mid:], top=False)
        return mid + right, left_written + right_written

    async def _post(self, lines: list[str]) -> _Unreachable | _Rejected | None:
        body = "\n".join(lines)
        try:
            await asyncio.to_thread(self._write_sync, body)
        except ApiException as exc:
            status = int(exc.status or 0)
            detail = _body_text(exc.body) or str(exc.reason or "")
            if status in _REJECTED_STATUSES:
                self._mark_up()  # it answered
                return _Rejected(status, detail)
            outcome = _Unreachable(f"HTTP {status} {detail}".strip(), _retry_after(exc.headers))
            self._mark_down(outcome)
            return outcome
        except Exception as exc:  # noqa: BLE001 - refused, timeouts, resets: all "away"
            outcome = _Unreachable(f"{type(exc).__name__}: {exc}")
            self._mark_down(outcome)
            return outcome
        self._mark_up()
        self._last_write_at = self._clock()
        return None

    def _write_sync(self, body: str) -> None:
        api = self._write_api
        if api is None:
            raise RuntimeError("the feed is closed")
        api.write(
            bucket=self.settings.bucket,
            org=self.settings.org,
            record=body,
            write_precision=PRECISION,
        )

    def _mark_up(self) -> None:
        if self._connected is not True:
            if self._down_since is not None:
                log.info(
                    "time-series feed: %s reachable again after %.0f s; %d points in the outbox",
                    self.settings.url,
                    self._clock() - self._down_since,
                    self.outbox_points,
                )
            else:
                log.info("time-series feed: writing to %s", self.settings.url)
        self._connected = True
        self._down_since = None
        self._retry_at = None
        self._failures = 0

    def _mark_down(self, outcome: _Unreachable) -> None:
        if self._connected is not False:
            log.warning(
                "time-series feed: %s unreachable (%s); points go to the outbox %s until it "
                "is back (logged once)",
                self.settings.url,
                outcome.error,
                self._outbox_path,
            )
            self._down_since = self._clock()
        self._connected = False
        self._last_error = outcome.error
        self._failures += 1
        delay = min(self.BACKOFF_MAX_S, self.BACKOFF_INITIAL_S * 2 ** min(self._failures - 1, 16))
        delay *= random.uniform(0.5, 1.0)  # several gateways must not return in step
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, self.RETRY_AFTER_MAX_S))
        self._retry_at = time.monotonic() + delay

    def _rejected_point(self, outcome: _Rejected, line: str) -> None:
        self.rejected += 1
        self._last_error = f"HTTP {outcome.status} {outcome.detail}"
        if self._reject_episode == 0:
            log.warning(
                "time-series feed: the server rejected a point (HTTP %d: %s); dropped, and "
                "so are further rejected points until a batch passes (logged once): %.300s",
                outcome.status,
                outcome.detail,
                line,
            )
        self._reject_episode += 1

    def _end_reject_episode(self) -> None:
        if self._reject_episode > 1:
            log.warning(
                "time-series feed: %d points were rejected by the server and dropped",
                self._reject_episode,
            )
        self._reject_episode = 0


def _body_text(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return str(body).strip()[:500] if body else ""


def _retry_after(headers: object) -> float | None:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    value = get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: rare enough to ignore, the backoff applies
