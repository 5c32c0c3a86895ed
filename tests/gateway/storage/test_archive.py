"""Retention: closed alarms past the retention move, whole, to a dated archive file with
the same schema; open alarms never move; the work goes in bounded batches."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.storage import migrate
from gateway.storage.archive import OLD_CLOSED, Archived, archive_batch, archive_path
from gateway.storage.schemas import ALARMS
from tests.fixtures import RELEASE, rows, version
from tests.fixtures import make_release_dbs as release

NOW = release.ts("2026-12-02T03:30:00")
CUTOFF = NOW - 400 * 86400.0  # 2025-10-28: after a-old-closed, before a-recent-closed
CUTOFF_DAY = datetime.fromtimestamp(CUTOFF, UTC).date()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "alarms.sqlite3"
    path.write_bytes((RELEASE / "alarms.sqlite3").read_bytes())
    migrate.migrate(path, ALARMS)
    return path


def run_all(db: Path, archive: Path, batch: int = 200) -> tuple[Archived, int]:
    total, batches = Archived(), 0
    while (moved := archive_batch(db, archive, CUTOFF, CUTOFF_DAY, batch)).rows:
        total += moved
        batches += 1
    return total, batches


def ids(path: Path, table: str, column: str = "alarm_id") -> list[Any]:
    with sqlite3.connect(path) as conn:
        return sorted(r[0] for r in conn.execute(f"SELECT {column} FROM {table}"))


def test_an_old_closed_alarm_moves_whole_to_the_archive(db: Path, tmp_path: Path) -> None:
    before = rows(db)
    archive = archive_path(tmp_path / "archive", date(2026, 12, 2))
    moved, _ = run_all(db, archive)
    assert moved == Archived(
        alarms=1, alarm_timeline=4, commands=0, escalation_sends=1, report_mailings=1
    )
    assert archive.name == "alarms-2026-12-02.sqlite3"
    assert version(archive) == ALARMS.version
    assert ids(archive, "alarms", "id") == ["a-old-closed"]
    assert ids(archive, "alarm_timeline") == ["a-old-closed"] * 4
    assert ids(archive, "escalation_sends") == ["a-old-closed"]
    assert ids(archive, "report_mailings", "day") == ["2025-08-02"]
    after = rows(db)
    # Nothing lost: what left the live file is in the archive, and nothing else left it.
    for table, old in before.items():
        kept = set(after[table])
        moved_rows = set(rows(archive).get(table, []))
        assert kept | moved_rows == set(old), table
        assert not kept & moved_rows, table
    assert "a-recent-closed" in ids(db, "alarms", "id")
    assert ids(db, "report_days", "day") == release.EXPECTED_REPORT_DAYS  # never archived


def test_open_alarms_never_move_however_old(db: Path, tmp_path: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alarms SET raised_at = 0, updated_at = 0 WHERE state != 'closed'")
        conn.execute("UPDATE alarms SET cleared_at = 1 WHERE state = 'cleared'")
    run_all(db, archive_path(tmp_path, date(2026, 12, 2)))
    assert ids(db, "alarms", "id") == ["a-acked", "a-active", "a-cleared", "a-recent-closed"]
    assert ids(db, "commands", "id") == ["c-active", "c-recent"]


def test_many_alarms_go_in_bounded_batches_and_a_second_run_appends(
    db: Path, tmp_path: Path
) -> None:
    with sqlite3.connect(db) as conn:
        for i in range(450):
            conn.execute(
                "INSERT INTO alarms SELECT ?, site, device || ?, type, severity, level, state, "
                "latched, acked, value, peak, count, reason, raised_at, acked_at, acked_by, "
                "cleared_at, closed_at - ?, closed_by, disposition, note, updated_at "
                "FROM alarms WHERE id = 'a-old-closed'",
                (f"old-{i:03}", str(i), i),
            )
            conn.execute(
                "INSERT INTO alarm_timeline SELECT ?, seq, at, action, actor, reason, value, "
                "severity, note, detail FROM alarm_timeline WHERE alarm_id = 'a-old-closed'",
                (f"old-{i:03}",),
            )
    archive = archive_path(tmp_path, date(2026, 12, 2))
    moved, batches = run_all(db, archive, batch=100)
    assert moved.alarms == 451
    assert moved.alarm_timeline == 451 * 4
    assert batches == 5  # 100 at a time
    assert len(ids(archive, "alarms", "id")) == 451

    # Later the same day a closed alarm passes the retention: appended to the same file.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alarms SET closed_at = ? WHERE id = 'a-recent-closed'", (CUTOFF - 1,))
    moved, _ = run_all(db, archive)
    assert (moved.alarms, moved.alarm_timeline, moved.commands) == (1, 4, 1)
    assert len(ids(archive, "alarms", "id")) == 452
    assert ids(archive, "commands", "id") == ["c-recent"]


def test_a_failing_batch_moves_nothing(db: Path, tmp_path: Path) -> None:
    before = rows(db)
    archive = archive_path(tmp_path, date(2026, 12, 2))
    migrate.migrate(archive, ALARMS)
    with sqlite3.connect(archive) as conn:  # the archive cannot take timeline rows
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON alarm_timeline "
            "BEGIN SELECT RAISE(ABORT, 'archive refused'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="archive refused"):
        archive_batch(db, archive, CUTOFF, CUTOFF_DAY, 200)
    assert rows(db) == before
    assert ids(archive, "alarms", "id") == []


def test_retention_finds_old_closed_alarms_by_the_index_of_step_2(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {OLD_CLOSED}", (CUTOFF, 200)).fetchall()
    assert "USING INDEX alarms_closed_at" in plan[0][3]
