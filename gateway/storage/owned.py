"""`OwnedDatabase`: one connection to a database beside the alarm path for its tables' owner
(people, hazards, incidents, duty), called from worker threads (`asyncio.to_thread`) and from
the CLI. One lock serialises the connection; every write is one short `BEGIN IMMEDIATE`
transaction; WAL and a busy timeout let a running gateway and the CLI write the same file.
`open` brings the file to its schema first (`gateway.storage.migrate`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from gateway.storage import migrate
from gateway.storage.migrate import Schema


class DatabaseUnavailable(RuntimeError):
    """The database is not open (it failed at start) or cannot answer (a broken disk)."""


class OwnedDatabase:
    SCHEMA: ClassVar[Schema]
    # What a caller gets when the database is not open or cannot answer (a subclass of
    # DatabaseUnavailable, so that the API answers every owner's the same way: 503).
    Unavailable: ClassVar[type[DatabaseUnavailable]] = DatabaseUnavailable

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        migrate.migrate(self.path, self.SCHEMA)  # a no-op for a second owner of the file
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=5000")
        self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """The connection, alone, outside any transaction (reads)."""
        with self._lock:
            if self._db is None:
                raise self.Unavailable(f"{self.path.name} is not open")
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise self.Unavailable(f"{self.path.name}: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _read(self, sql: str, args: Iterable[object] = ()) -> list[tuple[object, ...]]:
        with self._connection() as db:
            return db.execute(sql, tuple(args)).fetchall()
