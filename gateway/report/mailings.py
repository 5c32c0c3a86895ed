"""Which daily report went to whom: the `report_days` and `report_mailings` tables in the
alarms' database (`<data_dir>/alarms.sqlite3`), of which this module is the only reader and
writer.

A day's reports are mailed once. `report_days` holds the days whose mailing is over (every
mail sent or given up on); `report_mailings` holds each mail's outcome, so a restart part-way
through a day sends only the rest. Versions before this one kept the same facts in
`<data_dir>/report_state.json`; `load` imports that file once and renames it, so an upgrade
does not mail a day again.

The mailer writes a few rows a day, so each write opens its own short connection rather than
keeping a database thread for a task that sleeps all day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import aiosqlite
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.storage import migrate
from gateway.storage.schemas import ALARMS

log = logging.getLogger(__name__)


IMPORTED_SUFFIX = ".imported"

Target = tuple[str | None, str]  # (site, or None for the county report; recipient address)


@dataclass(frozen=True, slots=True)
class MailingFailure:
    day: date
    site: str | None  # None: the county report
    to: str
    error: str
    at: float | None


class Mailings:
    """The tables, and in memory what is asked without waiting: the last finished day and
    the recent failures. Nothing is known until `load`."""

    MAX_FAILURES = 100  # in memory; the table keeps them all

    def __init__(self, db_path: Path, legacy_state: Path | None = None) -> None:
        self._path = db_path
        self._legacy = legacy_state
        self._loaded = False
        self._last_day: date | None = None
        self._failures: list[MailingFailure] = []

    @property
    def last_day(self) -> date | None:
        """The latest day whose mailing is over; None before the first."""
        return self._last_day

    @property
    def failures(self) -> tuple[MailingFailure, ...]:
        return tuple(self._failures)

    def finished(self, day: date) -> bool:
        return self._last_day is not None and self._last_day >= day

    async def load(self) -> None:
        """Bring the file to the current schema, import an old state file, read what memory
        holds; once."""
        if self._loaded:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await migrate.ensure(self._path, ALARMS)
        async with self._connect() as db:
            await db.execute("PRAGMA journal_mode=WAL")
            if self._legacy is not None and self._legacy.exists():
                await _import_legacy(db, self._legacy)
            await db.commit()
            async with db.execute("SELECT max(day) FROM report_days") as cur:
                row = await cur.fetchone()
            async with db.execute(
                "SELECT day, site, recipient, detail, at FROM report_mailings WHERE ok = 0 "
                "ORDER BY rowid DESC LIMIT ?",
                (self.MAX_FAILURES,),
            ) as cur:
                failed = await cur.fetchall()
        self._last_day = date.fromisoformat(row[0]) if row and row[0] else None
        self._failures = [
            MailingFailure(date.fromisoformat(d), site, to, error or "", at)
            for d, site, to, error, at in reversed(list(failed))
        ]
        self._loaded = True

    async def sent(self, day: date) -> set[Target]:
        """The mails of `day` that went out."""
        async with (
            self._connect() as db,
            db.execute(
                "SELECT site, recipient FROM report_mailings WHERE day = ? AND ok = 1",
                (day.isoformat(),),
            ) as cur,
        ):
            return {(site, to) for site, to in await cur.fetchall()}

    async def record_sent(self, day: date, target: Target, detail: str, at: float) -> None:
        await self._insert(day, target, True, detail, at)

    async def record_failure(self, failure: MailingFailure) -> None:
        target = (failure.site, failure.to)
        await self._insert(failure.day, target, False, failure.error, failure.at)
        self._failures = [*self._failures, failure][-self.MAX_FAILURES :]

    async def finish(self, day: date, at: float) -> None:
        """The day's mailing is over: it is not mailed again, even after a restart."""
        async with self._connect() as db:
            await db.execute(
                "INSERT OR REPLACE INTO report_days (day, finished_at) VALUES (?, ?)",
                (day.isoformat(), at),
            )
            await db.commit()
        if self._last_day is None or day > self._last_day:
            self._last_day = day

    async def _insert(
        self, day: date, target: Target, ok: bool, detail: str, at: float | None
    ) -> None:
        async with self._connect() as db:
            await db.execute(
                "INSERT INTO report_mailings (day, site, recipient, ok, detail, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (day.isoformat(), target[0], target[1], int(ok), detail, at),
            )
            await db.commit()

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[aiosqlite.Connection]:
        async with aiosqlite.connect(self._path) as db:
            yield db


# ------------------------------------------------------------------ report_state.json


class _LegacyFailure(BaseModel):
    model_config = ConfigDict(extra="ignore")
    day: date
    site: str | None = None
    to: str
    error: str = ""
    at: str | None = None  # local ISO time


class _LegacyState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    last_day: date | None = None
    day: date | None = None
    delivered: list[str] = []  # "<site or *county*>|<address>"
    failures: list[_LegacyFailure] = []


async def _import_legacy(db: aiosqlite.Connection, path: Path) -> None:
    """The old JSON state into empty tables (in the caller's transaction), then renamed.

    Tables that already hold rows mean an import that committed before its rename (a crash
    in between): the file is only renamed. An unreadable file risks one repeated report;
    refusing to start would lose them all.
    """
    async with db.execute(
        "SELECT (SELECT count(*) FROM report_days) + (SELECT count(*) FROM report_mailings)"
    ) as cur:
        row = await cur.fetchone()
    if row is not None and row[0] == 0:
        try:
            state = _LegacyState.model_validate_json(await asyncio.to_thread(path.read_bytes))
        except (OSError, ValidationError) as exc:
            log.error("report state %s unreadable (%s); starting afresh", path, exc)
        else:
            await _insert_legacy(db, state)
            log.info("report state imported from %s", path)
    await db.commit()
    await asyncio.to_thread(path.replace, path.with_name(path.name + IMPORTED_SUFFIX))


async def _insert_legacy(db: aiosqlite.Connection, state: _LegacyState) -> None:
    if state.last_day is not None:
        await db.execute(
            "INSERT INTO report_days (day, finished_at) VALUES (?, NULL)",
            (state.last_day.isoformat(),),
        )
    rows: list[tuple[str, str | None, str, int, str | None, float | None]] = []
    if state.day is not None:
        for key in state.delivered:
            site, _, to = key.partition("|")
            rows.append((state.day.isoformat(), _site(site), to, 1, None, None))
    for f in state.failures:
        rows.append((f.day.isoformat(), f.site, f.to, 0, f.error, _epoch(f.at)))
    await db.executemany(
        "INSERT INTO report_mailings (day, site, recipient, ok, detail, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def _site(key_part: str) -> str | None:
    return None if key_part == "*county*" else key_part


def _epoch(iso: str | None) -> float | None:
    if iso is None:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
