"""The daily storage job: back up every database, then archive what is past retention.

Once a day at `storage.backup_at`, local time in the gateway's zone, and once soon after
start when the newest backup is more than a day old (the gateway was down at that hour, or
has never made one), so that an outage does not stretch the gap between copies. The loop
waits on the wall clock (the hour is a wall-clock hour) in slices of at most a minute, so a
clock step moves the run to the new hour rather than leaving it asleep. All SQLite work runs in
threads on connections of its own, in short transactions: the alarm path never waits for
it. A failure is logged once per run, counted (`gateway_storage_job_failures_total`) and
shown in `/api/health` (`storage`); the gateway goes on, and the next day tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config.schema import StorageSection
from gateway.health.metrics import Metrics
from gateway.storage.archive import Archived, archive_batch, archive_path
from gateway.storage.backup import BackupError, backup_all, last_backup_at

log = logging.getLogger(__name__)

ARCHIVE_BATCH = 200  # alarms per transaction: a few milliseconds of the writer's lock
WAKE_S = 60.0  # longest sleep before the wall clock is read again
CATCH_UP_AFTER_S = 300.0  # a missed day's backup waits for start-up to be over
ALARMS_DB = "alarms.sqlite3"


def next_run(now: float, at: str, zone: ZoneInfo) -> float:
    """The first `at` (HH:MM local) strictly after `now`. Across a DST gap, the hour that
    does not exist is read as the one after (zoneinfo's fold=0)."""
    local = datetime.fromtimestamp(now, zone)
    hour, minute = (int(p) for p in at.split(":"))
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due.timestamp() <= now:
        due = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return due.timestamp()


@dataclass(slots=True)
class JobState:
    last_ok_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0

    @property
    def failing(self) -> bool:
        return self.last_error is not None


class Housekeeping:
    def __init__(
        self,
        config: StorageSection,
        data_dir: Path,
        zone: ZoneInfo,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._data_dir = data_dir
        self._zone = zone
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self.backup = JobState()
        self.archive = JobState()
        self.last_archived = Archived()
        self.next_at: float | None = None

    @property
    def healthy(self) -> bool:
        return not (self.backup.failing or self.archive.failing)

    async def run(self) -> None:
        if self.overdue(self._clock()):
            self.next_at = self._clock() + CATCH_UP_AFTER_S
            await self._sleep_until(self.next_at)
            await self.once()
        while True:
            self.next_at = next_run(self._clock(), self._config.backup_at, self._zone)
            await self._sleep_until(self.next_at)
            await self.once()

    def overdue(self, now: float) -> bool:
        """The alarms' database exists and its newest backup is over a day old, or none."""
        if not (self._data_dir / ALARMS_DB).exists():
            return False
        last = last_backup_at(self._config.backups_in(self._data_dir), ALARMS_DB)
        return last is None or now - last > 86400.0

    async def _sleep_until(self, at: float) -> None:
        while (left := at - self._clock()) > 0:
            await self._sleep(min(left, WAKE_S))

    async def once(self) -> None:
        """Back up, then archive (on the backup's copy of what it removes, a day later)."""
        now = self._clock()
        try:
            made = await asyncio.to_thread(
                backup_all,
                self._data_dir,
                self._config.backups_in(self._data_dir),
                self._config.backup_keep,
                now,
            )
        except (BackupError, OSError) as exc:
            self._failed("backup", self.backup, exc, now)
        else:
            self._ok("backup", self.backup, now)
            log.info("storage: backed up %s", ", ".join(f"{b.path} ({b.size} B)" for b in made))
        try:
            moved = await self.archive_old(now)
        except Exception as exc:  # noqa: BLE001 - whatever it is: logged, counted, tried tomorrow
            self._failed("archive", self.archive, exc, now)
        else:
            self._ok("archive", self.archive, now)
            self.last_archived = moved
            if moved.rows:
                self._metrics.archived_rows.inc(moved.rows)
                log.info(
                    "storage: archived %d closed alarms (%d rows in all) older than %d days",
                    moved.alarms, moved.rows, self._config.retention_days,
                )  # fmt: skip

    async def archive_old(self, now: float) -> Archived:
        cutoff = now - self._config.retention_days * 86400.0
        cutoff_day = datetime.fromtimestamp(cutoff, self._zone).date()
        target = archive_path(self._config.archive_in(self._data_dir), self._today(now))
        source = self._data_dir / ALARMS_DB
        total = Archived()
        if not source.exists():
            return total
        while True:
            moved = await asyncio.to_thread(
                archive_batch, source, target, cutoff, cutoff_day, ARCHIVE_BATCH
            )
            total += moved
            if moved.rows == 0:
                return total

    def health(self, iso: Callable[[float | None], str | None]) -> dict[str, Any]:
        def job(s: JobState) -> dict[str, Any]:
            return {
                "last_ok_at": iso(s.last_ok_at),
                "failures": s.failures,
                "last_error": s.last_error,
                "last_error_at": iso(s.last_error_at),
            }

        return {
            "healthy": self.healthy,
            "backup_dir": str(self._config.backups_in(self._data_dir)),
            "next_run_at": iso(self.next_at),
            "backup": job(self.backup),
            "archive": {**job(self.archive), "last_archived_alarms": self.last_archived.alarms},
        }

    def _today(self, now: float) -> date:
        return datetime.fromtimestamp(now, self._zone).date()

    def _ok(self, name: str, state: JobState, now: float) -> None:
        if state.failing:
            log.warning("storage: %s works again", name)
        state.last_ok_at = now
        state.last_error = None

    def _failed(self, name: str, state: JobState, exc: BaseException, now: float) -> None:
        state.failures += 1
        state.last_error = f"{type(exc).__name__}: {exc}"
        state.last_error_at = now
        self._metrics.storage_failures.labels(name).inc()
        log.error("storage: daily %s failed (%s); the gateway goes on", name, state.last_error)
