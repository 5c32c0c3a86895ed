"""Online backups: a checked copy per database, the last N kept; `restore` puts one back
only when it is sound and no gateway runs, keeping the file it replaces."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.storage import lock, migrate
from gateway.storage.backup import BackupError, backup_all, backups, restore
from gateway.storage.schemas import ALARMS, DATABASES
from tests.fixtures import RELEASE, rows, version

DAY = 86400.0
T0 = 1_796_182_200.0  # 2026-12-02T03:30:00Z


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    for name in ("alarms.sqlite3", "timeseries-outbox.sqlite3"):
        (d / name).write_bytes((RELEASE / name).read_bytes())
        migrate.migrate(d / name, migrate_schema(name))
    return d


def migrate_schema(name: str) -> migrate.Schema:
    return DATABASES[name]


def test_a_backup_holds_every_row_and_is_checked(data_dir: Path, tmp_path: Path) -> None:
    made = backup_all(data_dir, tmp_path / "backups", keep=7, now=T0)
    assert sorted(b.path.name for b in made) == [
        "alarms-20261202T033000Z.sqlite3",
        "timeseries-outbox-20261202T033000Z.sqlite3",
    ]
    for b in made:
        assert b.version == migrate_schema(b.database).version
        assert rows(b.path) == rows(data_dir / b.database)
    assert not list((tmp_path / "backups").glob("*.partial"))


def test_a_backup_is_taken_while_a_writer_holds_a_transaction(
    data_dir: Path, tmp_path: Path
) -> None:
    committed = rows(data_dir / "alarms.sqlite3")
    writer = sqlite3.connect(data_dir / "alarms.sqlite3", isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM alarm_timeline")
    try:
        made = backup_all(data_dir, tmp_path / "backups", keep=7, now=T0)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    alarms = next(b for b in made if b.database == "alarms.sqlite3")
    assert rows(alarms.path) == committed  # the last commit, not the open transaction


def test_the_last_n_backups_are_kept_per_database(data_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    for day in range(5):
        backup_all(data_dir, dest, keep=3, now=T0 + day * DAY)
    for database in ("alarms.sqlite3", "timeseries-outbox.sqlite3"):
        kept = [p.name.rsplit("-", 1)[1] for p in backups(dest, database)]
        assert kept == [
            "20261204T033000Z.sqlite3",
            "20261205T033000Z.sqlite3",
            "20261206T033000Z.sqlite3",
        ]


def test_a_failed_backup_says_why_and_leaves_no_partial_file(
    data_dir: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "backups"
    dest.mkdir()
    # A directory in the way of the copy's temporary name: it cannot be written.
    (dest / "alarms-20261202T033000Z.sqlite3.partial").mkdir()
    with pytest.raises(BackupError, match=r"alarms\.sqlite3: IsADirectoryError"):
        backup_all(data_dir, dest, keep=7, now=T0)
    assert backups(dest, "alarms.sqlite3") == []


def test_restore_puts_the_backup_back_and_keeps_the_current_file(
    data_dir: Path, tmp_path: Path
) -> None:
    [alarms, _] = sorted(
        backup_all(data_dir, tmp_path / "backups", 7, T0), key=lambda b: b.database
    )
    before = rows(data_dir / "alarms.sqlite3")
    with sqlite3.connect(data_dir / "alarms.sqlite3") as db:
        db.execute("DELETE FROM alarms WHERE state = 'closed'")
    damaged = rows(data_dir / "alarms.sqlite3")

    target, kept = restore(data_dir, alarms.path, T0 + 60)
    assert target == data_dir / "alarms.sqlite3"
    assert rows(target) == before
    assert kept is not None and kept.name == "alarms.sqlite3.before-restore-20261202T033100Z"
    assert rows(kept) == damaged


def test_restore_refuses_a_damaged_or_newer_backup(data_dir: Path, tmp_path: Path) -> None:
    current = (data_dir / "alarms.sqlite3").read_bytes()
    garbage = tmp_path / "alarms-20261202T033000Z.sqlite3"
    garbage.write_bytes(b"not a database at all" * 1000)
    with pytest.raises(BackupError, match="not a readable database"):
        restore(data_dir, garbage, T0)

    newer = tmp_path / "alarms-20261203T033000Z.sqlite3"
    newer.write_bytes(current)
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {ALARMS.version + 1}")
    with pytest.raises(BackupError, match=f"newer than this gateway's {ALARMS.version}"):
        restore(data_dir, newer, T0)

    with pytest.raises(BackupError, match="not the name of a backup"):
        restore(data_dir, tmp_path / "whatever.db", T0)
    assert (data_dir / "alarms.sqlite3").read_bytes() == current
    assert version(data_dir / "alarms.sqlite3") == ALARMS.version


def test_the_data_dir_lock_is_held_by_one_holder(tmp_path: Path) -> None:
    with (
        lock.hold(tmp_path),
        pytest.raises(lock.DataDirBusy, match="a gateway is running on"),
        lock.hold(tmp_path),
    ):
        pass
    with lock.hold(tmp_path):  # released at the end of the block
        pass
