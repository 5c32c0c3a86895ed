"""The daily storage job: backup then archive at the configured local time; a failure is
logged, counted and shown, and the gateway (and the archive) go on."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.app.housekeeping import Housekeeping, next_run
from gateway.config.loading import parse_config
from gateway.config.schema import StorageSection
from gateway.health.metrics import Metrics
from gateway.storage.backup import backup_name, backups
from tests.conftest import running_gateway
from tests.fixtures import RELEASE
from tests.fixtures import make_release_dbs as release

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = release.ts("2026-12-02T03:30:00")  # 11:30 in Shanghai


def local(ts: float, zone: ZoneInfo = SHANGHAI) -> str:
    return datetime.fromtimestamp(ts, zone).isoformat()


def test_the_next_run_is_the_next_local_time() -> None:
    assert local(next_run(NOW, "03:30", SHANGHAI)) == "2026-12-03T03:30:00+08:00"
    assert local(next_run(NOW, "23:59", SHANGHAI)) == "2026-12-02T23:59:00+08:00"
    at_time = release.ts("2026-12-01T19:30:00")  # exactly 03:30 local: the next day's
    assert local(next_run(at_time, "03:30", SHANGHAI)) == "2026-12-03T03:30:00+08:00"
    berlin = ZoneInfo("Europe/Berlin")  # the night summer time ends: still once, at 03:30
    before = release.ts("2026-10-24T22:00:00")
    assert local(next_run(before, "03:30", berlin), berlin) == "2026-10-25T03:30:00+01:00"


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    for f in RELEASE.glob("*.sqlite3"):
        (d / f.name).write_bytes(f.read_bytes())
    return d


def job(data_dir: Path, clock: list[float], **config: object) -> tuple[Housekeeping, Metrics]:
    metrics = Metrics()
    hk = Housekeeping(
        StorageSection.model_validate(config), data_dir, SHANGHAI, metrics, lambda: clock[0]
    )
    return hk, metrics


def iso(ts: float | None) -> str | None:
    return None if ts is None else local(ts)


async def test_a_run_backs_up_then_archives(data_dir: Path) -> None:
    hk, metrics = job(data_dir, [NOW])
    await hk.once()
    assert [p.name for p in backups(data_dir / "backups", "alarms.sqlite3")] == [
        "alarms-20261202T033000Z.sqlite3"
    ]
    assert len(backups(data_dir / "backups", "timeseries-outbox.sqlite3")) == 1
    assert (data_dir / "archive" / "alarms-2026-12-02.sqlite3").exists()
    assert hk.last_archived.alarms == 1  # a-old-closed, closed 2025-08-01
    assert metric(metrics, "gateway_archived_rows_total") == hk.last_archived.rows > 1
    health = hk.health(iso)
    assert health["healthy"] is True
    assert health["backup"]["last_ok_at"] == "2026-12-02T11:30:00+08:00"
    assert health["archive"]["last_archived_alarms"] == 1


async def test_a_failed_backup_is_shown_and_counted_and_the_archive_still_runs(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the backups should go")
    clock = [NOW]
    hk, metrics = job(data_dir, clock, backup_dir=str(blocked))
    with caplog.at_level(logging.ERROR, logger="gateway.app.housekeeping"):
        await hk.once()
    assert not hk.healthy
    health = hk.health(iso)
    assert health["backup"]["failures"] == 1
    assert "alarms.sqlite3" in health["backup"]["last_error"]
    assert health["archive"]["last_error"] is None
    assert hk.last_archived.alarms == 1
    assert metric(metrics, "gateway_storage_job_failures_total", job="backup") == 1
    assert [r.getMessage()[:31] for r in caplog.records] == ["storage: daily backup failed (B"]

    blocked.unlink()  # the disk is put right: the next day's run works, health recovers
    clock[0] += 86400
    await hk.once()
    assert hk.healthy
    assert hk.health(iso)["backup"]["failures"] == 1  # counted since start


async def test_the_loop_runs_once_a_day_at_the_configured_time(data_dir: Path) -> None:
    clock = [NOW]
    runs: list[str] = []
    metrics = Metrics()
    config = StorageSection(backup_at="04:15")

    async def sleep(s: float) -> None:
        assert 0 < s <= 60  # the wall clock is read again at least every minute
        clock[0] += s

    hk = Housekeeping(config, data_dir, SHANGHAI, metrics, lambda: clock[0], sleep)

    async def once() -> None:
        runs.append(local(clock[0]))
        if len(runs) == 2:
            raise asyncio.CancelledError

    hk.once = once  # type: ignore[method-assign]
    (data_dir / "backups").mkdir()
    yesterday = data_dir / "backups" / backup_name("alarms.sqlite3", NOW - 20 * 3600)
    yesterday.write_bytes(b"")
    with pytest.raises(asyncio.CancelledError):
        await hk.run()
    assert runs == ["2026-12-03T04:15:00+08:00", "2026-12-04T04:15:00+08:00"]


async def test_a_day_missed_while_down_is_backed_up_soon_after_start(data_dir: Path) -> None:
    clock = [NOW]
    made: list[str] = []

    async def sleep(s: float) -> None:
        clock[0] += s

    hk = Housekeeping(StorageSection(), data_dir, SHANGHAI, Metrics(), lambda: clock[0], sleep)
    real_once = hk.once

    async def once() -> None:
        made.append(local(clock[0]))
        await real_once()
        if len(made) == 2:
            raise asyncio.CancelledError

    hk.once = once  # type: ignore[method-assign]
    backups_dir = data_dir / "backups"
    backups_dir.mkdir()
    (backups_dir / backup_name("alarms.sqlite3", NOW - 3 * 86400)).write_bytes(b"")
    assert hk.overdue(NOW)
    with pytest.raises(asyncio.CancelledError):
        await hk.run()
    # Five minutes after start (11:30 in Shanghai), then the usual hour the next night.
    assert made == ["2026-12-02T11:35:00+08:00", "2026-12-03T03:30:00+08:00"]
    assert not hk.overdue(clock[0])


@pytest.mark.broker
async def test_a_failed_backup_turns_health_degraded_and_shows_in_metrics(
    config_data: dict[str, Any], tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the backups should go")
    config_data["storage"] = {"backup_dir": str(blocked)}
    async with running_gateway(parse_config(config_data)) as running:
        health = (await running.api.get("/api/health")).json()
        assert health["status"] == "ok"
        assert health["storage"]["backup"]["failures"] == 0

        await running.gw.housekeeping.once()
        health = (await running.api.get("/api/health")).json()
        assert health["status"] == "degraded"
        assert health["storage"]["healthy"] is False
        assert health["storage"]["backup"]["failures"] == 1
        assert "FileExistsError" in health["storage"]["backup"]["last_error"]
        assert health["storage"]["archive"]["last_error"] is None
        metrics = (await running.api.get("/metrics")).text
        assert 'gateway_storage_job_failures_total{job="backup"} 1.0' in metrics
        # The gateway goes on: alarms are still raised and stored.
        assert running.gw.store.healthy
