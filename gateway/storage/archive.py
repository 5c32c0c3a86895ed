"""Retention: closed alarms older than the retention move to a dated archive file, with
their timeline, their commands and their escalation sends; so do commands of no alarm and
report mailings of that age. Open alarms never move, however old.

The archive (`<archive_dir>/alarms-<local date>.sqlite3`) has the alarms' schema (migrated
like the live file) and a second run the same day appends to it. Work goes in batches of
`batch` alarms, each one short transaction over both files (the store's writer waits at
most that long for the lock); rows are copied before they are deleted, with
`INSERT OR REPLACE`, so a crash between the two files' commits leaves a row in both and the
next run finishes the move: a row can be in both, never in neither. Blocking: the daily job
runs each batch in a thread.

Not archived: `report_days` (one row a day; the mailer's memory of what was sent) and
`maintenance` (one row per device at most, and the windows' owner holds them in memory).
Rows move whole under the tables' owners, who never read closed alarms from before the
retention (the report reads a year back at most, hence the default of 400 days).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

from gateway.storage.migrate import connect, migrate
from gateway.storage.schemas import ALARMS

# Closed before a time, oldest first: by the partial index of schema step 2.
OLD_CLOSED = (
    "SELECT id FROM main.alarms WHERE state = 'closed' AND closed_at < ? ORDER BY closed_at LIMIT ?"
)

# (table, the rows of it that go along with the alarms in `gone`)
_WITH_ALARMS = (
    ("alarm_timeline", "alarm_id IN (SELECT id FROM temp.gone)"),
    ("commands", "alarm_id IN (SELECT id FROM temp.gone)"),
    ("escalation_sends", "alarm_id IN (SELECT id FROM temp.gone)"),
    ("alarms", "id IN (SELECT id FROM temp.gone)"),
)


@dataclass(frozen=True, slots=True)
class Archived:
    alarms: int = 0
    alarm_timeline: int = 0
    commands: int = 0
    escalation_sends: int = 0
    report_mailings: int = 0

    def __add__(self, other: Archived) -> Archived:
        return Archived(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def rows(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


def archive_path(archive_dir: Path, day: date) -> Path:
    return archive_dir / f"alarms-{day.isoformat()}.sqlite3"


def archive_batch(
    db_path: Path, archive: Path, cutoff: float, cutoff_day: date, batch: int
) -> Archived:
    """Move at most `batch` closed alarms closed before `cutoff` (and what goes with them),
    and at most `batch` each of alarm-less commands sent and report mailings of days before
    it, in one transaction. Nothing left to move: all zero."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    migrate(archive, ALARMS)
    with contextlib.closing(connect(db_path)) as db:
        db.execute("ATTACH DATABASE ? AS arch", (str(archive),))
        db.execute("CREATE TEMP TABLE IF NOT EXISTS gone (id TEXT PRIMARY KEY)")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM temp.gone")
            db.execute(f"INSERT INTO temp.gone {OLD_CLOSED}", (cutoff, batch))
            moved = {table: _move(db, table, where, ()) for table, where in _WITH_ALARMS}
            moved["commands"] += _move(
                db, "commands",
                "rowid IN (SELECT rowid FROM main.commands WHERE alarm_id IS NULL "
                "AND sent_at < ? ORDER BY rowid LIMIT ?)",
                (cutoff, batch),
            )  # fmt: skip
            moved["report_mailings"] = _move(
                db, "report_mailings",
                "rowid IN (SELECT rowid FROM main.report_mailings WHERE day < ? "
                "ORDER BY rowid LIMIT ?)",
                (cutoff_day.isoformat(), batch),
            )  # fmt: skip
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("DETACH DATABASE arch")
    return Archived(**moved)


def _move(db: sqlite3.Connection, table: str, where: str, args: tuple[object, ...]) -> int:
    # Tables with a key are replaced, so a repeated move is harmless. `report_mailings`
    # has none: a crash between the two files' commits (the live file is in WAL mode, so
    # they are not one atomic commit) may leave such a row in the archive twice, not lost.
    db.execute(
        f"INSERT OR REPLACE INTO arch.{table} SELECT * FROM main.{table} WHERE {where}", args
    )
    return db.execute(f"DELETE FROM main.{table} WHERE {where}", args).rowcount
