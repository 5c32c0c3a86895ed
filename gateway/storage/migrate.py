"""Schema versions: `PRAGMA user_version` and the ordered steps that lead to the newest.

A database's version is the number of steps applied. Version 1 is the schema of the
2026-12 release, written with `IF NOT EXISTS`; that release set no version, so a file at 0
whose tables are there is brought to 1 by running step 1 over it (it creates what is
missing and leaves rows alone), and then checked to have version 1's shape, column for
column, so a file of some other shape is refused rather than half-migrated.

Migrating an existing file first copies it beside itself (`VACUUM INTO`
`<name>.v<from>-<UTC time>.pre-upgrade`), then applies every missing step in one
transaction: a step that fails leaves the file as it was. A file newer than the code is
refused (`SchemaTooNew`): running old code on it could lose what the new one wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Several owners open the alarms' file at start; each waits for another's migration.
BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Step:
    """What brings a database to version `to` from the one before; `sql` may hold several
    statements (triggers included)."""

    to: int
    sql: str


@dataclass(frozen=True, slots=True)
class Schema:
    """One database file's history: `steps[i]` leads to version i + 1."""

    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        for i, step in enumerate(self.steps):
            if step.to != i + 1:
                raise ValueError(f"{self.name}: step {i + 1} says it leads to {step.to}")

    @property
    def version(self) -> int:
        return len(self.steps)

    def then(self, sql: str) -> Schema:
        """This schema with one more step: how later issues add a table or an index."""
        return Schema(self.name, (*self.steps, Step(self.version + 1, sql)))


class SchemaError(Exception):
    """The file cannot be brought to the code's schema; nothing was changed."""


class SchemaTooNew(SchemaError):
    def __init__(self, path: Path, found: int, supported: int) -> None:
        super().__init__(
            f"{path} has schema version {found}, newer than this gateway's {supported}: "
            "it was written by a newer gateway; install that version again, or restore "
            "a backup made by this one"
        )
        self.path = path
        self.found = found
        self.supported = supported


class MigrationFailed(SchemaError):
    def __init__(self, path: Path, step: int, error: str, backup: Path | None) -> None:
        kept = f"; the file is as it was, a copy is {backup}" if backup else ""
        super().__init__(f"{path}: migration to schema version {step} failed: {error}{kept}")
        self.backup = backup


@dataclass(frozen=True, slots=True)
class Migrated:
    path: Path
    from_version: int
    to_version: int
    backup: Path | None  # None: a new file, nothing to keep


def connect(path: Path) -> sqlite3.Connection:
    """A connection that leaves transactions to the caller."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    return db


def user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def statements(sql: str) -> Iterator[str]:
    """The statements of `sql` one by one (`executescript` would commit the transaction)."""
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip() and not buf.strip().startswith("--"):
        raise ValueError(f"incomplete statement: {buf.strip()[:80]!r}")


def migrate(path: Path, schema: Schema, now: float | None = None) -> Migrated | None:
    """Bring `path` to `schema.version`; None when it already was. Blocking: call it from a
    thread (`ensure`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = connect(path)
    try:
        found = user_version(db)
        if found > schema.version:
            raise SchemaTooNew(path, found, schema.version)
        if found == schema.version:
            return None
        backup = _keep_copy(db, path, found, time.time() if now is None else now)
        db.execute("BEGIN IMMEDIATE")
        try:
            found = user_version(db)  # another owner may have migrated meanwhile
            if found > schema.version:
                raise SchemaTooNew(path, found, schema.version)
            for step in schema.steps[found:]:
                try:
                    for statement in statements(step.sql):
                        db.execute(statement)
                    if step.to == 1 and found == 0:
                        _check_shape(db, schema.steps[0])
                except (sqlite3.Error, SchemaError) as exc:
                    raise MigrationFailed(path, step.to, str(exc), backup) from exc
            db.execute(f"PRAGMA user_version = {schema.version}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        db.close()
    if found == schema.version:
        return None
    done = Migrated(path, found, schema.version, backup)
    if backup is not None:
        log.warning(
            "%s: schema migrated from version %d to %d; the file before is kept as %s",
            path, found, schema.version, backup,
        )  # fmt: skip
    return done


async def ensure(path: Path, schema: Schema) -> Migrated | None:
    """`migrate` off the event loop; cheap when the file is up to date (one pragma)."""
    return await asyncio.to_thread(migrate, path, schema)


def _keep_copy(db: sqlite3.Connection, path: Path, version: int, now: float) -> Path | None:
    if not _tables(db):
        return None  # a new, empty file: nothing to lose
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    dest = path.with_name(f"{path.name}.v{version}-{stamp}.pre-upgrade")
    n = 1
    while dest.exists():
        dest = path.with_name(f"{path.name}.v{version}-{stamp}.{n}.pre-upgrade")
        n += 1
    db.execute("VACUUM INTO ?", (str(dest),))
    return dest


def _tables(db: sqlite3.Connection) -> set[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {r[0] for r in rows}


def _columns(db: sqlite3.Connection, table: str) -> list[tuple[str, str, int, int]]:
    rows = db.execute(f"SELECT name, type, \"notnull\", pk FROM pragma_table_info('{table}')")
    return [tuple(r) for r in rows.fetchall()]


def _check_shape(db: sqlite3.Connection, first: Step) -> None:
    """A file from before versions, after step 1: every table of version 1 must have
    exactly version 1's columns (a table of the same name from something else would
    otherwise pass as ours)."""
    reference = sqlite3.connect(":memory:")
    try:
        reference.executescript(first.sql)
        for table in sorted(_tables(reference)):
            want, have = _columns(reference, table), _columns(db, table)
            if want != have:
                raise SchemaError(
                    f"table {table} is not version 1's: columns {[c[0] for c in have]}, "
                    f"expected {[c[0] for c in want]}"
                )
    finally:
        reference.close()


def too_new(data_dir: Path, databases: Mapping[str, Schema]) -> list[SchemaTooNew]:
    """The databases of `data_dir` newer than the code, read without changing anything:
    what `run` refuses to start on and `check` reports."""
    found = []
    for name, schema in databases.items():
        path = data_dir / name
        if not path.exists():
            continue
        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            ) as db:
                version = user_version(db)
        except sqlite3.Error:
            continue  # not ours to judge here: the store's own checks at open say what it is
        if version > schema.version:
            found.append(SchemaTooNew(path, version, schema.version))
    return found
