"""Upgrades lose nothing: the files a 2026-12 gateway wrote (tests/fixtures/release-2026-12,
made by that release's code) open with this code, every row where it was, each owner
finding what it wrote; a copy of the file before is kept beside it."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from gateway.alarms.store import AlarmStore
from gateway.notify.maintenance import MaintenanceWindows
from gateway.notify.sendlog import SendLog
from gateway.report.mailings import Mailings
from gateway.storage import migrate
from gateway.storage.schemas import ALARMS, OUTBOX
from gateway.timeseries.outbox import Outbox
from tests.fixtures import RELEASE, rows, version
from tests.fixtures import make_release_dbs as release


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for f in RELEASE.glob("*.sqlite3"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_the_release_files_carry_no_version() -> None:
    # What the migration must recognise: tables present, user_version 0.
    assert version(RELEASE / "alarms.sqlite3") == 0
    assert version(RELEASE / "timeseries-outbox.sqlite3") == 0
    assert "alarms" in rows(RELEASE / "alarms.sqlite3")


async def test_every_row_of_the_release_survives_the_upgrade(data_dir: Path) -> None:
    before = rows(data_dir / "alarms.sqlite3")
    before_outbox = rows(data_dir / "timeseries-outbox.sqlite3")

    store = AlarmStore(data_dir / "alarms.sqlite3")
    await store.open()
    try:
        assert version(data_dir / "alarms.sqlite3") == ALARMS.version
        after = rows(data_dir / "alarms.sqlite3")
        assert {table: after[table] for table in before} == before  # every row, unchanged
        assert not any(after[t] for t in set(after) - set(before))  # later steps' tables
        for alarm_id, (state, acked, actions) in release.EXPECTED_ALARMS.items():
            alarm = await store.get(alarm_id)
            assert alarm is not None, alarm_id
            assert (alarm.state.value, alarm.acked) == (state, acked)
            assert [e.action.value for e in alarm.timeline] == actions
        assert {a.id for a in await store.load_open()} == {"a-acked", "a-active", "a-cleared"}
        commands = {c.id: c.alarm_id for c in await store.commands()}
        assert commands == release.EXPECTED_COMMANDS
    finally:
        await store.close()

    windows = MaintenanceWindows(data_dir / "alarms.sqlite3")
    await windows.open()
    assert set(windows.windows) == release.EXPECTED_MAINTENANCE
    assert windows.active("xingfu", "smoke-hall", release.ts("2026-12-02T00:00:00")) is not None
    await windows.close()

    sends = SendLog(data_dir / "alarms.sqlite3")
    await sends.open()
    loaded = await sends.load(sent_since=0.0)
    assert {(s.key.alarm_id, s.key.step) for s in loaded} == release.EXPECTED_SENDS
    await sends.close()

    mailings = Mailings(data_dir / "alarms.sqlite3")
    await mailings.load()
    assert mailings.last_day == date.fromisoformat(release.EXPECTED_REPORT_DAYS[-1])
    assert [f.to for f in mailings.failures] == ["bureau@county.example"]
    assert await mailings.sent(date(2026, 11, 29)) == {(None, "bureau@county.example")}

    outbox = Outbox(data_dir / "timeseries-outbox.sqlite3", 1000, 1000)
    await outbox.open()
    assert outbox.counts == release.EXPECTED_OUTBOX
    assert [r[0] for r in await outbox.oldest(100)] == [1, 2, 3, 4, 5, 6]
    await outbox.close()
    assert version(data_dir / "timeseries-outbox.sqlite3") == OUTBOX.version
    assert rows(data_dir / "timeseries-outbox.sqlite3") == before_outbox

    # Each file was copied, as it was, before its first migration; later opens make none.
    kept = sorted(p.name for p in data_dir.glob("*.pre-upgrade"))
    assert [k.split(".v0-")[0] for k in kept] == ["alarms.sqlite3", "timeseries-outbox.sqlite3"]
    for k in kept:
        assert version(data_dir / k) == 0
        assert rows(data_dir / k) == rows(RELEASE / k.split(".v0-")[0])


def test_the_release_tables_are_exactly_version_1(tmp_path: Path) -> None:
    """Step 1 is the release's DDL word for word: a new file at version 1 has the same
    tables, indexes and triggers as the release's file."""

    def shape(path: Path) -> set[tuple[str, str, str | None]]:
        with sqlite3.connect(path) as db:
            return set(db.execute("SELECT type, name, sql FROM sqlite_master"))

    for name, schema in (("alarms.sqlite3", ALARMS), ("timeseries-outbox.sqlite3", OUTBOX)):
        first = migrate.Schema(schema.name, schema.steps[:1])
        migrate.migrate(tmp_path / name, first)
        assert shape(tmp_path / name) == shape(RELEASE / name)


def test_migrating_twice_is_a_no_op(data_dir: Path) -> None:
    path = data_dir / "alarms.sqlite3"
    done = migrate.migrate(path, ALARMS)
    assert done is not None
    assert (done.from_version, done.to_version) == (0, ALARMS.version)
    after = path.read_bytes()
    assert migrate.migrate(path, ALARMS) is None
    assert path.read_bytes() == after
    assert len(list(data_dir.glob("alarms.sqlite3.*.pre-upgrade"))) == 1


def test_a_new_file_is_made_at_the_newest_version_without_a_copy(tmp_path: Path) -> None:
    done = migrate.migrate(tmp_path / "alarms.sqlite3", ALARMS)
    assert done is not None and done.backup is None
    assert version(tmp_path / "alarms.sqlite3") == ALARMS.version
    assert list(tmp_path.glob("*.pre-upgrade")) == []


async def test_a_newer_file_is_refused_naming_both_versions(data_dir: Path) -> None:
    path = data_dir / "alarms.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {ALARMS.version + 3}")
    before = path.read_bytes()
    store = AlarmStore(path)
    with pytest.raises(migrate.SchemaTooNew) as refused:
        await store.open()
    await store.close()
    message = str(refused.value)
    assert f"schema version {ALARMS.version + 3}" in message
    assert f"this gateway's {ALARMS.version}" in message
    assert path.read_bytes() == before
    assert store.recovery is None  # refused, not taken for corrupt and moved aside


def test_a_failing_step_leaves_the_file_as_it_was(data_dir: Path) -> None:
    path = data_dir / "alarms.sqlite3"
    migrate.migrate(path, ALARMS)
    before = rows(path)
    broken = ALARMS.then("CREATE TABLE archive_runs (day TEXT);").then(
        "INSERT INTO alarms (id) VALUES ('not enough columns');"
    )
    with pytest.raises(migrate.MigrationFailed) as failed:
        migrate.migrate(path, broken)
    assert f"schema version {ALARMS.version + 2}" in str(failed.value)
    assert version(path) == ALARMS.version
    assert rows(path) == before  # step 3's table is gone with the rest
    assert failed.value.backup is not None and failed.value.backup.exists()
    assert rows(failed.value.backup) == before


def test_a_foreign_table_of_the_same_name_is_not_taken_for_version_1(tmp_path: Path) -> None:
    path = tmp_path / "alarms.sqlite3"
    with sqlite3.connect(path) as db:
        # Every column step 1's indexes need, one more: only the shape check can tell.
        db.execute(
            "CREATE TABLE maintenance (site TEXT, device TEXT, until REAL, by TEXT, note TEXT, "
            "reason TEXT, PRIMARY KEY (site, device))"
        )
    with pytest.raises(migrate.MigrationFailed, match="table maintenance is not version 1's"):
        migrate.migrate(path, ALARMS)
    assert version(path) == 0
    assert set(rows(path)) == {"maintenance"}


def test_steps_must_be_numbered_in_order() -> None:
    with pytest.raises(ValueError, match="step 2 says it leads to 3"):
        migrate.Schema("x", (migrate.Step(1, ""), migrate.Step(3, "")))
