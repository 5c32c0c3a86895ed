"""The outbox: the one owner of the `outbox` table, points the server has not taken yet.

Points come here when the server is unreachable (and everything after them, so that order
holds), or when the server takes points more slowly than they come; they are replayed in
id order, which is production order, across gateway restarts too.

The outbox holds at most `outbox_max_points`: beyond that the oldest readings go first,
then the oldest status points; alarm points are never dropped (so with nothing else left,
alarms alone may exceed the bound). The caller counts and logs the drops.

When the disk fails (full, locked), nothing is half-stored: the transaction is rolled back,
the failure is logged once, `OutboxError` tells the caller, and `retry_at` says when to try
again; meanwhile points wait in memory.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import aiosqlite

from gateway.storage import migrate
from gateway.storage.schemas import OUTBOX
from gateway.timeseries.buffer import DROP_ORDER, KINDS, Item

log = logging.getLogger(__name__)


# (id, kind, line)
Row = tuple[int, str, str]


class OutboxError(Exception):
    """The outbox could not be read or written; nothing changed. Retry after `retry_at`."""


class Outbox:
    DISK_RETRY_S = 5.0  # after the outbox failed to write (disk full, locked)

    def __init__(self, path: Path, max_points: int, memory_max_points: int) -> None:
        self.path = path
        self.max_points = max_points
        self._memory_max_points = memory_max_points  # what the failure log promises
        self._db: aiosqlite.Connection | None = None
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.retry_at = 0.0  # monotonic; after a failure, not before
        self.error: str | None = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def points(self) -> int:
        return sum(self.counts.values())

    async def open(self) -> None:
        """Bring the file to the current schema (`gateway.storage`) and count what an earlier
        run left."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await migrate.ensure(self.path, OUTBOX)
        db = await aiosqlite.connect(self.path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: WAL commits survive a crash of the process, not a power cut; the
            # outbox is telemetry, and the memory buffer is lost in a crash anyway.
            await db.execute("PRAGMA synchronous=NORMAL")
            rows = await db.execute_fetchall("SELECT kind, count(*) FROM outbox GROUP BY kind")
        except BaseException:
            await db.close()
            raise
        self._db = db
        for kind, count in rows:
            self.counts[kind] = int(count)
        if self.points:
            log.info(
                "time-series feed: %d points in the outbox from an earlier run (%s); "
                "they are written first",
                self.points,
                ", ".join(f"{k} {n}" for k, n in self.counts.items() if n),
            )

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def store(self, items: Sequence[Item]) -> dict[str, int]:
        """Append `items` in order, in one transaction, then drop beyond `max_points` in
        DROP_ORDER. Returns how many points of each kind were dropped."""
        db = self._require_db()
        added = dict.fromkeys(KINDS, 0)
        for item in items:
            added[item[2]] += 1
        counts = {k: self.counts[k] + added[k] for k in KINDS}
        dropped = dict.fromkeys(DROP_ORDER, 0)
        try:
            await db.executemany(
                "INSERT INTO outbox (kind, line) VALUES (?, ?)", [(i[2], i[3]) for i in items]
            )
            excess = sum(counts.values()) - self.max_points
            for kind in DROP_ORDER:
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
            raise self._failed(exc) from exc
        if self.error is not None:
            log.info("time-series feed: the outbox can be written again")
            self.error = None
        self.counts = counts
        return dropped

    async def oldest(self, n: int) -> list[Row]:
        """The oldest `n` points, left in place."""
        db = self._require_db()
        try:
            rows = cast(
                "list[Row]",
                list(
                    await db.execute_fetchall(
                        "SELECT id, kind, line FROM outbox ORDER BY id LIMIT ?", (n,)
                    )
                ),
            )
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        if not rows:  # counts out of step with the table: trust the table
            self.counts = dict.fromkeys(KINDS, 0)
        return rows

    async def remove(self, rows: Sequence[Row]) -> None:
        """Remove `rows`, the oldest points (after they were written). If that fails they
        stay, and are sent again later: delivery is at least once."""
        db = self._require_db()
        try:
            await db.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
            await db.commit()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        for row in rows:
            self.counts[row[1]] -= 1
        if self.points == 0:
            log.info("time-series feed: outbox drained")

    def _require_db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the outbox is not open")
        return self._db

    def _failed(self, exc: sqlite3.Error) -> OutboxError:
        self.retry_at = time.monotonic() + self.DISK_RETRY_S
        if self.error is None:
            log.error(
                "time-series feed: cannot write the outbox (%s); points wait in memory "
                "(at most %d, oldest readings dropped beyond)",
                exc,
                self._memory_max_points,
            )
        self.error = str(exc)
        return OutboxError(str(exc))
