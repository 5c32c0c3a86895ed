"""Online backups of the databases and putting one back.

A backup is `VACUUM INTO` from a read-only connection: a consistent copy of the last
commit, taken while the gateway writes (WAL readers do not stop writers). It is written
under a temporary name, checked (`quick_check`, a schema version this code knows) and only
then given its name `<db>-<UTC time>.sqlite3`; the oldest beyond `keep` per database are
deleted. Blocking: the daily job runs it in a thread.

`restore` puts a checked backup in place of a database while no gateway runs (the caller
holds the data directory's lock): the current file, with its -wal and -shm, is kept aside as
`<db>.before-restore-<UTC time>`. A backup older than the code is migrated at the next start.
"""

from __future__ import annotations

import calendar
import contextlib
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.storage.migrate import Schema, user_version
from gateway.storage.schemas import DATABASES

PARTIAL = ".partial"


class BackupError(Exception):
    """A backup could not be made, or a file is not a sound backup; says why."""


@dataclass(frozen=True, slots=True)
class Backup:
    database: str  # "alarms.sqlite3"
    path: Path
    size: int
    version: int


def stamp(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def backup_name(database: str, now: float) -> str:
    return f"{_stem(database)}-{stamp(now)}.sqlite3"


def backup_database(
    data_dir: Path, database: str, dest_dir: Path, keep: int, now: float
) -> Backup | None:
    """Back up one database of `data_dir` into `dest_dir`; None when it does not exist."""
    src = data_dir / database
    if not src.exists():
        return None
    dest = dest_dir / backup_name(database, now)
    partial = dest.with_name(dest.name + PARTIAL)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        with contextlib.closing(_read_only(src)) as db:
            db.execute("VACUUM INTO ?", (str(partial),))
        try:
            version = verify(partial, DATABASES[database])
        except BackupError as exc:
            raise BackupError(f"the copy failed its check: {exc}") from exc
        partial.replace(dest)
    except (sqlite3.Error, OSError, BackupError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise BackupError(f"{database}: {type(exc).__name__}: {exc}") from exc
    prune(dest_dir, database, keep)
    return Backup(database, dest, dest.stat().st_size, version)


def backup_all(data_dir: Path, dest_dir: Path, keep: int, now: float) -> list[Backup]:
    """Every database that exists; the first failure stops and is raised."""
    made = []
    for database in DATABASES:
        done = backup_database(data_dir, database, dest_dir, keep, now)
        if done is not None:
            made.append(done)
    return made


def backups(dest_dir: Path, database: str) -> list[Path]:
    """The backups of `database`, oldest first (the names sort by time)."""
    return sorted(dest_dir.glob(f"{_stem(database)}-*.sqlite3"))


def last_backup_at(dest_dir: Path, database: str) -> float | None:
    """When the newest backup of `database` was made (the time in its name), if any."""
    for path in reversed(backups(dest_dir, database)):
        text = path.name.removeprefix(f"{_stem(database)}-").removesuffix(".sqlite3")
        try:
            return calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            continue  # a file of another name that matched the pattern
    return None


def prune(dest_dir: Path, database: str, keep: int) -> list[Path]:
    found = backups(dest_dir, database)
    gone = found[: max(0, len(found) - keep)]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def verify(path: Path, schema: Schema) -> int:
    """The file's schema version, if it is a sound database this code can open."""
    try:
        with contextlib.closing(_read_only(path)) as db:
            found = [
                line
                for row in db.execute("PRAGMA quick_check")
                for line in str(row[0]).splitlines()
            ]
            version = user_version(db)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a readable database: {exc}") from exc
    if found != ["ok"]:
        raise BackupError(
            f"{path}: quick_check found {len(found)} problems: {'; '.join(found[:3])}"
        )
    if version > schema.version:
        raise BackupError(
            f"{path} has schema version {version}, newer than this gateway's {schema.version}"
        )
    return version


def database_of(backup: Path) -> str:
    """Which database a backup file is of, from its name (`alarms-<time>.sqlite3`)."""
    for database in sorted(DATABASES, key=len, reverse=True):
        if backup.name.startswith(_stem(database) + "-") and backup.name.endswith(".sqlite3"):
            return database
    names = ", ".join(f"{_stem(d)}-<time>.sqlite3" for d in DATABASES)
    raise BackupError(f"{backup.name}: not the name of a backup ({names})")


def restore(data_dir: Path, backup: Path, now: float) -> tuple[Path, Path | None]:
    """Install `backup` as its database in `data_dir`. Returns (the database, where the
    file it replaces was kept, or None if there was none). The caller holds the lock."""
    database = database_of(backup)
    verify(backup, DATABASES[database])
    target = data_dir / database
    incoming = target.with_name(target.name + ".restoring")
    shutil.copyfile(backup, incoming)
    kept: Path | None = None
    if target.exists():
        kept = target.with_name(f"{target.name}.before-restore-{stamp(now)}")
        for suffix in ("-wal", "-shm", ""):  # the database last: its name marks it done
            src = target.with_name(target.name + suffix)
            if src.exists():
                src.rename(kept.with_name(kept.name + suffix))
    incoming.replace(target)
    return target, kept


def _stem(database: str) -> str:
    return database.removesuffix(".sqlite3")


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
