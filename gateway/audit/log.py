"""The audit table's one owner: appends (async for the gateway, `append_sync` for the CLI),
queries, and the head file.

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
import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeAlias, TypeVar

from gateway.audit.actions import AUDIT_GAP, SYSTEM
from gateway.config.text import clean_text
from gateway.storage import migrate
from gateway.storage.schemas import AUDIT

log = logging.getLogger(__name__)

GENESIS: Final = "0" * 64  # the prev_hash of the first row
LOCK_TIMEOUT_S: Final = migrate.BUSY_TIMEOUT_S
MAX_LIMIT: Final = 10_000

DetailValue: TypeAlias = str | int | float | bool | None
Detail: TypeAlias = Mapping[str, DetailValue]
T = TypeVar("T")

COLUMNS: Final = (
    "seq, at, actor, actor_name, role, source, action, site, target, result, detail, "
    "prev_hash, hash"
)
_HASHED: Final = (
    "seq", "at", "actor", "actor_name", "role", "source", "action", "site", "target",
    "result", "detail",
)  # fmt: skip


class AuditClosed(RuntimeError):
    """Append or query on a log that is not open."""


class AuditLocked(TimeoutError):
    """Another process held the append lock for longer than `LOCK_TIMEOUT_S`."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened, as the caller knows it. Text is cleaned of control and bidi characters
    here, so what is hashed and stored is what is shown."""

    at: float  # epoch seconds
    actor: str  # login, token name, "local" or "system"
    actor_name: str  # display name
    role: str
    source: str  # client address, "cli" or "signal"
    action: str  # "<resource>.<verb>", see gateway.audit.actions
    site: str | None = None  # None: not about one site (only admins read it)
    target: str | None = None  # alarm id, device id, login, token id...
    result: str = "ok"  # ok | refused | failed | locked | ...
    detail: Detail | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.at):
            raise ValueError(f"audit entry time is not finite: {self.at!r}")
        # A float, always: an int would hash as "5" but read back from REAL as 5.0.
        object.__setattr__(self, "at", float(self.at))
        object.__setattr__(self, "actor", clean_text(self.actor))
        object.__setattr__(self, "actor_name", clean_text(self.actor_name))
        object.__setattr__(self, "role", clean_text(self.role))
        object.__setattr__(self, "source", clean_text(self.source))
        object.__setattr__(self, "action", clean_text(self.action))
        object.__setattr__(self, "result", clean_text(self.result))
        object.__setattr__(self, "site", _clean_or_none(self.site))
        object.__setattr__(self, "target", _clean_or_none(self.target))
        for name in ("actor", "action", "result"):
            if not getattr(self, name):
                raise ValueError(f"audit entry without {name}")
        if self.detail is not None:
            object.__setattr__(self, "detail", _clean_detail(self.detail))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored row."""

    seq: int
    at: float
    actor: str
    actor_name: str
    role: str
    source: str
    action: str
    site: str | None
    target: str | None
    result: str
    detail: Detail | None
    prev_hash: str
    hash: str


def _clean_or_none(s: str | None) -> str | None:
    return None if s is None else clean_text(s)


def _clean_detail(detail: Detail) -> dict[str, DetailValue]:
    out: dict[str, DetailValue] = {}
    for key, value in detail.items():
        if not isinstance(key, str):
            raise TypeError(f"audit detail key is not text: {key!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"audit detail {key!r} is not finite: {value!r}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError(f"audit detail {key!r} is a {type(value).__name__}")
        out[clean_text(key)] = (
            clean_text(value, multiline=True) if isinstance(value, str) else value
        )
    return out


def detail_text(detail: Detail | None) -> str | None:
    """The stored (and hashed) form of a detail: canonical JSON."""
    if detail is None:
        return None
    return json.dumps(
        dict(detail), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def row_hash(prev_hash: str, fields: tuple[Any, ...]) -> str:
    """sha256(prev_hash || canonical JSON of the row's fields, seq to detail, in `_HASHED`
    order; detail as its stored text)."""
    canonical = json.dumps(
        dict(zip(_HASHED, fields, strict=True)),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(prev_hash.encode("ascii") + canonical.encode("utf-8")).hexdigest()


def head_path(db_path: Path) -> Path:
    return db_path.with_suffix(".head")


def _lock_path(db_path: Path) -> Path:
    return db_path.with_suffix(".lock")


# --------------------------------------------------------------------------- head file
@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str


class HeadUnreadable(ValueError):
    pass


def read_head(db_path: Path) -> Head | None:
    """The head file's content; None if there is none. Raises HeadUnreadable."""
    try:
        raw = head_path(db_path).read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise HeadUnreadable(str(exc)) from exc
    try:
        data = json.loads(raw)
        seq, digest = data["seq"], data["hash"]
    except (ValueError, TypeError, KeyError) as exc:
        raise HeadUnreadable(f"not a head: {raw[:80]!r}") from exc
    if not isinstance(seq, int) or not isinstance(digest, str):
        raise HeadUnreadable(f"not a head: {raw[:80]!r}")
    return Head(seq, digest)


def _write_head(db_path: Path, seq: int, digest: str) -> None:
    """Atomically: a reader sees the old head or the new one, never a part."""
    path = head_path(db_path)
    tmp = path.with_name(f"{path.name}.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(json.dumps({"seq": seq, "hash": digest}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _exclusive(db_path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """The appenders' lock, across processes: the transaction and the head write as one."""
    with open(_lock_path(db_path), "a+b") as f:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AuditLocked(f"{_lock_path(db_path)} held for over {timeout_s}s") from None
                time.sleep(0.005)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


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
    with _exclusive(db_path):
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
        _write_head(db_path, seq, digest)
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


# ---------------------------------------------------------------------------- queries
def select(
    db: sqlite3.Connection,
    *,
    since: float | None = None,
    until: float | None = None,
    sites: Collection[str] | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 500,
    people_only: bool = False,
) -> list[AuditRecord]:
    """Rows newest first (by seq). `since` <= at < `until`; `sites` None: every row, else
    only rows of those sites (rows without a site are left out); `action` matches as a
    prefix ("alarm." finds alarm.ack and alarm.close); `people_only` leaves out the
    system's rows."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: 1 to {MAX_LIMIT}, not {limit}")
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append("at >= ?")
        args.append(since)
    if until is not None:
        where.append("at < ?")
        args.append(until)
    if sites is not None:
        if not sites:
            return []
        # One parameter whatever the number of sites (a county has thousands).
        where.append("site IN (SELECT value FROM json_each(?))")
        args.append(json.dumps(sorted(sites)))
    if actor is not None:
        where.append("actor = ?")
        args.append(actor)
    if action:
        where.append("substr(action, 1, ?) = ?")
        args += [len(action), action]
    if people_only:
        where.append("actor != ?")
        args.append(SYSTEM)
    sql = f"SELECT {COLUMNS} FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC LIMIT ?"
    args.append(limit)
    return [_from_row(r) for r in db.execute(sql, args).fetchall()]


def _from_row(r: tuple[Any, ...]) -> AuditRecord:
    detail = json.loads(r[10]) if r[10] is not None else None
    return AuditRecord(
        int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], detail,
        r[11], r[12],
    )  # fmt: skip


def connect_readonly(db_path: Path) -> sqlite3.Connection:
    """Raises FileNotFoundError when there is no log yet (opening would create it)."""
    if not db_path.exists():
        raise FileNotFoundError(f"no audit log at {db_path}")
    return sqlite3.connect(
        f"{db_path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=migrate.BUSY_TIMEOUT_S,
        isolation_level=None,
    )


def query_readonly(
    db_path: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    sites: Collection[str] | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 500,
    people_only: bool = False,
) -> list[AuditRecord]:
    """`select` over a read-only connection of its own (the CLI, the report), blocking;
    no log yet is no rows."""
    try:
        db = connect_readonly(db_path)
    except FileNotFoundError:
        return []
    try:
        return select(
            db, since=since, until=until, sites=sites, actor=actor, action=action,
            limit=limit, people_only=people_only,
        )  # fmt: skip
    finally:
        db.close()


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

    async def query(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        sites: Collection[str] | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 500,
        people_only: bool = False,
    ) -> list[AuditRecord]:
        """Newest first; see `select`."""
        return await self._run(
            partial(
                select, self._connection(), since=since, until=until, sites=sites,
                actor=actor, action=action, limit=limit, people_only=people_only,
            )
        )  # fmt: skip

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise AuditClosed(f"audit log {self.path} is not open")
        return self._db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise AuditClosed(f"audit log {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
