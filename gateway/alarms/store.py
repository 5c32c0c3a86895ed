"""SQLite store for alarms, their timelines and the command log (aiosqlite, WAL): the one
writer. With its read side, `gateway.alarms.history` (every SELECT), it is the one owner of
the `alarms`, `alarm_timeline`, `commands` and `seen_messages` tables; their shape, and its
versions, are `gateway.storage.schemas`', applied at `open`.

Writes are queued by the alarm path without waiting and committed in batches by one
writer task; each batch is one transaction. Only after the commit are the writes handed
to `on_committed` (MQTT alarms topic, live console, notifications), so anything seen
outside the gateway is already on disk and survives a `kill -9`. Except while commits
fail (a full or broken disk): then people must still hear of alarms, so every write not yet
handed on is handed on at once, and again nothing is handed on twice when the commit lands.

A failing commit is one of two kinds. One the disk may recover from (locked, busy, full,
I/O error) is retried with backoff, the batch kept whole. One that can never succeed (a
value SQLite cannot bind, a constraint, a row or JSON that cannot be built) would stop every
later write if retried; the batch is then applied write by write, each in a savepoint, and
only the offending writes are dropped: logged once with their record, counted, their waiting
callers told (`PoisonWrite`). The rest commits as usual.

At open, `PRAGMA quick_check` runs. A database SQLite calls corrupt (or a file that is not
a database) is moved aside with its -wal and -shm, kept for inspection as
`alarms.sqlite3.corrupt-<UTC time>`, and the store starts on a fresh one: `recovery` says
so, and the supervisor raises the `store_failure` alarm. Any other error (locked, I/O,
cannot open) fails the start, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from gateway.actuate.wire import CommandRecord
from gateway.alarms.book import Alarm, AlarmWrite, TimelineEntry
from gateway.alarms.event import AlarmEvent
from gateway.alarms.history import ALARM_COLUMNS, HistoryReads
from gateway.storage import migrate
from gateway.storage.schemas import ALARMS

log = logging.getLogger(__name__)


_UPSERT_ALARM = (
    f"INSERT INTO alarms ({ALARM_COLUMNS}) VALUES ({', '.join('?' * 22)}) "
    "ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c.strip()}=excluded.{c.strip()}" for c in ALARM_COLUMNS.split(",")[1:])
)
_UPSERT_COMMAND = (
    "INSERT INTO commands (id, site, device, cmd, requested_by, alarm_id, "
    "reason, sent_at, result, result_at, detail) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
    "result=excluded.result, result_at=excluded.result_at, "
    "detail=excluded.detail"
)
_UPSERT_SEEN = "INSERT OR REPLACE INTO seen_messages (lane, mid, digest, at) VALUES (?, ?, ?, ?)"
_DELETE_ENTRY = "DELETE FROM alarm_timeline WHERE alarm_id = ? AND seq = ?"
_INSERT_ENTRY = (
    "INSERT OR IGNORE INTO alarm_timeline "
    "(alarm_id, seq, at, action, actor, reason, value, severity, note, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


# A write that fails with one of these will fail the same way every time: binding a value
# SQLite has no type for, a constraint, a row or JSON that cannot be built. Everything else
# (`OperationalError`: locked, busy, full, I/O; `OSError`) is worth a retry.
_NEVER_SUCCEEDS: tuple[type[Exception], ...] = (
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    TypeError,
    ValueError,
    OverflowError,
)


# SQLite's primary result codes for a damaged file; anything else is not the file's fault.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


class PoisonWrite(Exception):
    """A write that can never succeed was dropped; the rest of its batch was committed."""


@dataclass(slots=True)
class _AlarmOp:
    row: tuple[Any, ...]
    entries: list[tuple[Any, ...]]
    elided: list[tuple[str, int]]  # timeline entries out of the repeat window: deleted
    write: AlarmWrite
    event: AlarmEvent
    seq: int
    done: asyncio.Future[None] | None = None
    # Set when the write can never succeed (its row could not be built, or the database
    # refused it alone): it is dropped after its batch commits.
    error: str | None = None
    # Handed to `on_committed` before its commit, while the store was failing.
    shown: bool = False
    # Keys of the messages whose last write this is (`note_seen`): stored with it.
    seen: tuple[tuple[int, int, int, float], ...] = ()

    def describe(self) -> str:
        a = self.write.alarm
        return (
            f"alarm {a.id!r} site {a.site!r} device {a.device!r} action {self.write.action.value!r}"
        )


@dataclass(slots=True)
class _CommandOp:
    record: CommandRecord
    seq: int
    done: asyncio.Future[None] | None = None
    error: str | None = None
    seen: tuple[tuple[int, int, int, float], ...] = ()

    def describe(self) -> str:
        r = self.record
        return f"command {r.id!r} site {r.site!r} device {r.device!r} cmd {r.cmd!r}"


_STOP: Any = object()


@dataclass(slots=True)
class StoreStats:
    committed_batches: int = 0
    committed_ops: int = 0
    failed_batches: int = 0
    last_error: str | None = None
    # Writes dropped because they can never succeed (see the module docstring).
    poison_dropped: int = 0
    last_poison: str | None = None
    pending: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoreRecovery:
    """The database found corrupt at open and moved aside; the store runs on a fresh one."""

    moved_to: str  # the kept file; its -wal and -shm beside it, if there were any
    reason: str  # what SQLite said: the error, or quick_check's first lines
    at: float


class CorruptDatabase(Exception):
    """`quick_check` found the database damaged, or SQLite refused it as corrupt."""


def alarm_row(a: Alarm) -> tuple[Any, ...]:
    return (
        a.id, a.site, a.device, a.type.value, a.severity.value, a.level, a.state.value,
        int(a.latched), int(a.acked), a.value, a.peak, a.count, a.reason, a.raised_at,
        a.acked_at, a.acked_by, a.cleared_at, a.closed_at, a.closed_by,
        a.disposition.value if a.disposition else None, a.note, a.updated_at,
    )  # fmt: skip


def _entry_row(alarm_id: str, seq: int, e: TimelineEntry) -> tuple[Any, ...]:
    return (
        alarm_id, seq, e.at, e.action.value, e.actor, e.reason, e.value,
        e.severity.value if e.severity else None, e.note,
        orjson.dumps(e.detail).decode() if e.detail is not None else None,
    )  # fmt: skip


class AlarmStore(HistoryReads):
    """Owns the database connections. Reads are direct, on their own connection (the
    queries are `HistoryReads`); writes go through `submit_*` and the batching writer."""

    BATCH_MAX = 500

    def __init__(
        self,
        path: Path,
        # Synchronous: it is also called from a submit, on the alarm path, which never waits.
        on_committed: Callable[[Sequence[AlarmEvent]], None] | None = None,
        on_durable: Callable[[int], None] | None = None,
        on_poison: Callable[[str], None] | None = None,
    ) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        # A second connection for reads: WAL lets it read while the writer commits, and
        # aiosqlite serialises work per connection, so a slow or locked commit would
        # otherwise hold up every API query behind it.
        self._reader: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._on_committed = on_committed
        self._on_durable = on_durable
        self._on_poison = on_poison  # called with "alarm" or "command" per dropped write
        self.stats = StoreStats()
        # Every write gets a sequence number; `committed` is the highest one on disk. The
        # MQTT link holds back the acknowledgement of a message until what it caused is
        # committed, so a crash before the commit makes the broker deliver it again.
        self.submitted = 0
        self.committed = 0
        self.healthy = True
        self.recovery: StoreRecovery | None = None
        self._last: _AlarmOp | _CommandOp | None = None  # the last op submitted

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self._open()
        except CorruptDatabase as exc:
            await self.close()
            self.recovery = self._move_aside(str(exc))
            log.error(
                "alarm store %s is corrupt (%s): moved aside to %s, starting on a fresh database",
                self._path, self.recovery.reason, self.recovery.moved_to,
            )  # fmt: skip
            await self._open()

    async def _open(self) -> None:
        try:
            self._db = await aiosqlite.connect(self._path)
            cursor = await self._db.execute("PRAGMA quick_check")
            found = [line for row in await cursor.fetchall() for line in str(row[0]).splitlines()]
            if found != ["ok"]:
                raise CorruptDatabase(
                    f"quick_check found {len(found)} problems: " + "; ".join(found[:3])[:300]
                )
            await self._db.execute("PRAGMA journal_mode=WAL")
            # FULL survives power loss as well as kill -9; alarm writes are few and batched,
            # so the cost of an fsync per commit is affordable here.
            await self._db.execute("PRAGMA synchronous=FULL")
            await self._db.execute("PRAGMA foreign_keys=ON")
            # The tables are made (or brought up to date) by the one migration mechanism;
            # a file newer than this code is refused (`SchemaTooNew`) and fails the start.
            await migrate.ensure(self._path, ALARMS)
        except sqlite3.DatabaseError as exc:
            # Only a damaged file is moved aside; locked, busy, I/O or cannot-open fail
            # the start (a retry by systemd may succeed; moving the file would lose it).
            if exc.sqlite_errorcode & 0xFF not in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                raise
            raise CorruptDatabase(f"{type(exc).__name__}: {exc}") from exc
        self._reader = await aiosqlite.connect(self._path)

    def _move_aside(self, reason: str) -> StoreRecovery:
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        kept = self._path.with_name(f"{self._path.name}.corrupt-{stamp}")
        n = 1
        while kept.exists():  # two recoveries within a second keep both files
            kept = self._path.with_name(f"{self._path.name}.corrupt-{stamp}.{n}")
            n += 1
        for suffix in ("-wal", "-shm", ""):  # the database last: its name marks it done
            src = self._path.with_name(self._path.name + suffix)
            if src.exists():
                src.rename(kept.with_name(kept.name + suffix))
        return StoreRecovery(str(kept), reason, now)

    async def close(self) -> None:
        for conn in (self._reader, self._db):
            if conn is not None:
                await conn.close()
        self._db = None
        self._reader = None

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------ writes
    def submit_alarm(
        self, write: AlarmWrite, event: AlarmEvent, wait: bool = False
    ) -> asyncio.Future[None] | None:
        """Queue a transition; never blocks. With `wait`, returns a future set on commit
        (or failed with `PoisonWrite` if the write can never succeed)."""
        # The rows are built now: the book's alarm changes after this returns.
        a = write.alarm
        error = None
        row: tuple[Any, ...] = ()
        entries: list[tuple[Any, ...]] = []
        try:
            row = alarm_row(a)
            entries = [
                _entry_row(a.id, write.first_seq + i, e) for i, e in enumerate(write.entries)
            ]
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is this write's alone
            error = f"cannot build row: {type(exc).__name__}: {exc}"
        done = asyncio.get_running_loop().create_future() if wait else None
        self.submitted += 1
        elided = [(a.id, seq) for seq in write.elided]
        op = _AlarmOp(row, entries, elided, write, event, self.submitted, done, error)
        self._queue.put_nowait(op)
        self._last = op
        if not self.healthy and error is None:
            self._show([op])  # the disk is failing: the duty room is told now, not later
        return done

    def submit_command(
        self, record: CommandRecord, wait: bool = False
    ) -> asyncio.Future[None] | None:
        done = asyncio.get_running_loop().create_future() if wait else None
        self.submitted += 1
        op = _CommandOp(record, self.submitted, done)
        self._queue.put_nowait(op)
        self._last = op
        return done

    def note_seen(self, lane: int, mid: int, digest: int, at: float) -> None:
        """The message just handled caused the writes submitted last: store its key with the
        last of them, in the same transaction, so that the key is on disk exactly when what
        the message changed is (`gateway.ingest.redelivery`). Called synchronously after the
        submits: the writer cannot have taken that op yet (it runs only when we yield)."""
        op = self._last
        if op is None or op.seq != self.submitted:
            raise RuntimeError("note_seen without a write of the message just handled")
        op.seen = (*op.seen, (lane, mid, digest, at))

    async def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted so far is committed (or the store is failing)."""
        target = self.submitted
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.committed < target and self.healthy:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return self.committed >= target

    async def run_writer(self) -> None:
        """Commit queued writes in batches until `stop()`; everything before it is kept.

        Not cancelled on shutdown: a cancel could land in the middle of a commit and lose
        the batch in hand. The supervisor calls `stop()` and waits for this to return.
        """
        while True:
            first = await self._queue.get()
            if first is _STOP:
                await self.drain()
                return
            await self._commit_batch(self._take_batch(first))

    def stop(self) -> None:
        self._queue.put_nowait(_STOP)

    async def drain(self) -> None:
        while not self._queue.empty():
            op = self._queue.get_nowait()
            if op is not _STOP:
                await self._commit_batch(self._take_batch(op))

    def _take_batch(self, first: _AlarmOp | _CommandOp) -> list[_AlarmOp | _CommandOp]:
        batch = [first]
        while len(batch) < self.BATCH_MAX:
            try:
                op = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if op is _STOP:
                self._queue.put_nowait(op)  # keep it for run_writer, after this batch
                break
            batch.append(op)
        return batch

    async def _commit_batch(self, batch: list[_AlarmOp | _CommandOp]) -> None:
        db = self.db
        delay = 0.1
        while True:
            try:
                await self._write(batch)
                break
            except (aiosqlite.Error, OSError) as exc:
                # Disk full, locked, I/O error: the alarm path keeps running from memory;
                # we keep retrying so that nothing accepted is lost, and say so loudly.
                self.stats.failed_batches += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if self.healthy:
                    log.error("alarm store commit failed (%s); retrying with backoff", exc)
                    # Nor must people wait: what this batch and the writes queued behind
                    # it change goes out now (later writes at their submit, while failing).
                    self._show([*batch, *self._queue_snapshot()])
                self.healthy = False
                # Degraded: do not make the broker wait on a broken disk. Ingestion and
                # alarms go on from memory; redelivery after a crash is what we give up.
                if self._on_durable is not None:
                    self._on_durable(self.submitted)
                with contextlib.suppress(aiosqlite.Error):
                    await db.rollback()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if not self.healthy:
            log.warning("alarm store commits again")
        self.healthy = True
        poisoned = [op for op in batch if op.error is not None]
        self.committed = batch[-1].seq
        self.stats.committed_batches += 1
        self.stats.committed_ops += len(batch) - len(poisoned)
        if self._on_durable is not None:
            self._on_durable(self.committed)
        for op in poisoned:
            self._drop(op)
        for op in batch:
            if op.done is not None and not op.done.done():
                op.done.set_result(None)
        if self._on_committed is not None:
            events = [
                op.event
                for op in batch
                if isinstance(op, _AlarmOp) and op.error is None and not op.shown
            ]
            if events:
                self._on_committed(events)

    def _queue_snapshot(self) -> list[Any]:
        """What waits behind the batch in hand, in order (the queue is left as it was)."""
        waiting = []
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for op in waiting:
            self._queue.put_nowait(op)
        return waiting

    def _show(self, ops: Sequence[Any]) -> None:
        """Hand alarm writes to `on_committed` ahead of their commit (the store is failing);
        each is marked, so the commit, when it lands, does not hand it on again."""
        fresh = [op for op in ops if isinstance(op, _AlarmOp) and op.error is None and not op.shown]
        if not fresh or self._on_committed is None:
            return
        for op in fresh:
            op.shown = True
        self._on_committed([op.event for op in fresh])

    async def _write(self, batch: list[_AlarmOp | _CommandOp]) -> None:
        """Commit the batch but its poison writes, marking those (`op.error`). Raises only
        what may be worth a retry."""
        db = self.db
        ops = [op for op in batch if op.error is None]
        try:
            # One statement per table, not per row: each is a round trip to the
            # database thread, which waits for the interpreter while ingestion is busy.
            # Rows keep their order within a table; timeline rows after their alarms, and
            # the repeats a write elides after the entries (one may be of this batch).
            alarms = [op.row for op in ops if isinstance(op, _AlarmOp)]
            entries = [e for op in ops if isinstance(op, _AlarmOp) for e in op.entries]
            elided = [e for op in ops if isinstance(op, _AlarmOp) for e in op.elided]
            commands = [_command_row(op.record) for op in ops if isinstance(op, _CommandOp)]
            seen = [k for op in ops for k in op.seen]
            if alarms:
                await db.executemany(_UPSERT_ALARM, alarms)
            if entries:
                await db.executemany(_INSERT_ENTRY, entries)
            if elided:
                await db.executemany(_DELETE_ENTRY, elided)
            if commands:
                await db.executemany(_UPSERT_COMMAND, commands)
            if seen:
                await db.executemany(_UPSERT_SEEN, seen)
            await db.commit()
            return
        except _NEVER_SUCCEEDS as exc:
            log.info("alarm store batch refused (%s: %s); applying it write by write",
                     type(exc).__name__, exc)  # fmt: skip
            with contextlib.suppress(aiosqlite.Error):
                await db.rollback()
        # One savepoint per write: a refused write is rolled back alone. Errors of the
        # savepoint statements themselves, and retryable ones, go to the caller's retry.
        await db.execute("BEGIN")
        for op in ops:
            await db.execute("SAVEPOINT op")
            try:
                await self._apply(op)
            except _NEVER_SUCCEEDS as exc:
                await db.execute("ROLLBACK TO op")
                op.error = f"{type(exc).__name__}: {exc}"
            await db.execute("RELEASE op")
        await db.commit()

    async def _apply(self, op: _AlarmOp | _CommandOp) -> None:
        db = self.db
        if isinstance(op, _AlarmOp):
            await db.execute(_UPSERT_ALARM, op.row)
            if op.entries:
                await db.executemany(_INSERT_ENTRY, op.entries)
            if op.elided:
                await db.executemany(_DELETE_ENTRY, op.elided)
        else:
            await db.execute(_UPSERT_COMMAND, _command_row(op.record))
        if op.seen:
            await db.executemany(_UPSERT_SEEN, op.seen)

    def _drop(self, op: _AlarmOp | _CommandOp) -> None:
        """A poison write, after the rest of its batch committed: logged once, counted,
        and its waiting caller told."""
        what = op.describe()
        self.stats.poison_dropped += 1
        self.stats.last_poison = f"{what}: {op.error}"
        log.error("alarm store dropped a write that can never succeed: %s: %s", what, op.error)
        if self._on_poison is not None:
            self._on_poison("alarm" if isinstance(op, _AlarmOp) else "command")
        if op.done is not None and not op.done.done():
            op.done.set_exception(PoisonWrite(f"{what}: {op.error}"))


def _command_row(r: CommandRecord) -> tuple[Any, ...]:
    return (
        r.id, r.site, r.device, r.cmd, r.requested_by, r.alarm_id, r.reason, r.sent_at,
        r.result, r.result_at, r.detail,
    )  # fmt: skip
