"""The audit table's one owner: appends (async for the gateway through `AuditLog`,
`append_sync` for the CLI); its rows are `gateway.audit.entry`, its head and lock files
`gateway.audit.head`, its reads `gateway.audit.query`.

An append, from whichever process, runs under one exclusive lock (`audit.lock`, flock) and
in one `BEGIN IMMEDIATE` transaction: read the last row, insert the next one chained to it,
commit, then replace the head file (`audit.head`: last seq and hash). The head is written
after the commit, so a crash in between leaves it one row behind, never ahead: a stale head
is no evidence of anything, a head ahead of the table is (rows deleted at the end).

An append that finds the head ahead of the table, or naming a row whose hash differs, first
appends an `audit.gap` row saying what it found, then its own: the loss stays in the chain
after the head has moved on (`verify` reports it).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, Unpack

from gateway.audit.actions import AUDIT_GAP, SYSTEM
from gateway.audit.entry import (
    COLUMNS,
    GENESIS,
    AuditEntry,
    AuditRecord,
    DetailValue,
    detail_text,
    row_hash,
)
from gateway.audit.head import (
    HeadUnreadable,
    exclusive,
    read_head,
    write_head,
)
from gateway.audit.query import AuditFilter, select
from gateway.storage import migrate
from gateway.storage.schemas import AUDIT

log = logging.getLogger(__name__)

T = TypeVar("T")


class AuditClosed(RuntimeError):
    """Append or query on a log that is not open."""


# ------------------------------------------------------------------------- the appends
def connect(db_path: Path) -> sqlite3.Connection:
    """A writing connection, the schema brought up to date first. Blocking."""
    migrate.migrate(db_path, AUDIT)
    db = sqlite3.connect(
        db_path, timeout=migrate.BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # an appended row survives a power cut
    except BaseException:
        db.close()
        raise
    return db


def append_on(db: sqlite3.Connection, db_path: Path, entry: AuditEntry) -> AuditRecord:
    """One append on a connection from `connect` (blocking; see the module's docstring)."""
    gap: dict[str, DetailValue] | None = None
    with exclusive(db_path):
        db.execute("BEGIN IMMEDIATE")
        try:
            last_seq, last_hash = _last(db)
            gap = _gap(db, db_path, last_seq)
            if gap is not None:
                found = AuditEntry(
                    entry.at, SYSTEM, "审计日志", SYSTEM, "audit", AUDIT_GAP,
                    result="failed", detail=gap,
                )  # fmt: skip
                last_seq, last_hash = _insert(db, last_seq + 1, last_hash, found)
            seq, digest = _insert(db, last_seq + 1, last_hash, entry)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        write_head(db_path, seq, digest)
    if gap is not None:
        log.error("audit log %s: %s; recorded as row %d", db_path, gap["reason"], seq - 1)
    return _record(seq, entry, last_hash, digest)


def append_sync(db_path: Path, entry: AuditEntry) -> AuditRecord:
    """One append from a process without the log open (the CLI); blocking."""
    db = connect(db_path)
    try:
        return append_on(db, db_path, entry)
    finally:
        db.close()


def _last(db: sqlite3.Connection) -> tuple[int, str]:
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def _gap(db: sqlite3.Connection, db_path: Path, last_seq: int) -> dict[str, DetailValue] | None:
    """What the head says is missing from the table, or None."""
    try:
        head = read_head(db_path)
    except HeadUnreadable as exc:
        return {"reason": "head unreadable", "error": str(exc), "last_seq": last_seq}
    if head is None:
        return None if last_seq == 0 else {"reason": "head missing", "last_seq": last_seq}
    found: dict[str, DetailValue] = {
        "head_seq": head.seq,
        "head_hash": head.hash,
        "last_seq": last_seq,
    }
    if head.seq > last_seq:
        return {"reason": "missing rows at end", **found}
    if head.seq == 0:
        return None
    row = db.execute("SELECT hash FROM audit WHERE seq = ?", (head.seq,)).fetchone()
    if row is None or row[0] != head.hash:
        return {"reason": "head mismatch", **found}
    return None


def _fields(seq: int, e: AuditEntry) -> tuple[Any, ...]:
    return (
        seq, e.at, e.actor, e.actor_name, e.role, e.source, e.action, e.site, e.target,
        e.result, detail_text(e.detail),
    )  # fmt: skip


def _insert(db: sqlite3.Connection, seq: int, prev_hash: str, e: AuditEntry) -> tuple[int, str]:
    fields = _fields(seq, e)
    digest = row_hash(prev_hash, fields)
    db.execute(
        f"INSERT INTO audit ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*fields, prev_hash, digest),
    )
    return seq, digest


def _record(seq: int, e: AuditEntry, prev_hash: str, digest: str) -> AuditRecord:
    return AuditRecord(
        seq, e.at, e.actor, e.actor_name, e.role, e.source, e.action, e.site, e.target,
        e.result, e.detail, prev_hash, digest,
    )  # fmt: skip


# ------------------------------------------------------------------------ the owner
class AuditLog:
    """The running gateway's log: one connection used from one thread of its own (as
    aiosqlite does), so an append never blocks the event loop and appends of this process
    run one after the other. A failed append raises to its caller."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="audit")
        try:
            self._db = await self._run(connect, self.path)
        except BaseException:
            self._thread.shutdown(wait=False)
            self._thread = None
            raise

    async def close(self) -> None:
        thread, db = self._thread, self._db
        self._thread = self._db = None
        if thread is None:
            return
        try:
            if db is not None:
                # Queued after any append still running: it finishes first.
                await asyncio.get_running_loop().run_in_executor(thread, db.close)
        finally:
            thread.shutdown(wait=False)

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Stored, chained and in the head file when this returns; raises otherwise."""
        return await self._run(append_on, self._connection(), self.path, entry)

    async def query(self, **want: Unpack[AuditFilter]) -> list[AuditRecord]:
        """Newest first; see `select`."""
        return await self._run(partial(select, self._connection(), **want))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise AuditClosed(f"audit log {self.path} is not open")
        return self._db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise AuditClosed(f"audit log {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
