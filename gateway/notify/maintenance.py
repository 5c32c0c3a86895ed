"""Maintenance windows: the `maintenance` table, of which this module is the only reader and
writer, and its copy in memory.

A device in maintenance has its alarms recorded but nobody is called about them (DESIGN
section 7). The question is asked for every alarm on the alarm path, so it is answered from
memory; the table only makes the windows survive a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from gateway.storage import migrate
from gateway.storage.schemas import ALARMS


@dataclass(frozen=True, slots=True)
class Maintenance:
    site: str
    device: str
    until: float
    by: str
    note: str | None


class MaintenanceWindows:
    """Empty until `open`, which loads the table (and keeps its own connection to it)."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._db: aiosqlite.Connection | None = None
        self._windows: dict[tuple[str, str], Maintenance] = {}

    async def open(self) -> None:
        await migrate.ensure(self._path, ALARMS)
        self._db = await aiosqlite.connect(self._path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        async with self._db.execute("SELECT site, device, until, by, note FROM maintenance") as cur:
            for site, device, until, by, note in await cur.fetchall():
                self._windows[(site, device)] = Maintenance(site, device, until, by, note)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def windows(self) -> Mapping[tuple[str, str], Maintenance]:
        """Every window set, including those that have run out (until cleared)."""
        return self._windows

    def active(self, site: str, device: str, now: float) -> Maintenance | None:
        m = self._windows.get((site, device))
        return m if m is not None and m.until > now else None

    async def set(self, m: Maintenance) -> None:
        """Sets or replaces the device's window; on disk before it is in force."""
        assert self._db is not None
        await self._db.execute(
            "INSERT OR REPLACE INTO maintenance (site, device, until, by, note) "
            "VALUES (?, ?, ?, ?, ?)",
            (m.site, m.device, m.until, m.by, m.note),
        )
        await self._db.commit()
        self._windows[(m.site, m.device)] = m

    async def clear(self, site: str, device: str) -> bool:
        """Ends the device's window; False when it had none."""
        assert self._db is not None
        await self._db.execute(
            "DELETE FROM maintenance WHERE site = ? AND device = ?", (site, device)
        )
        await self._db.commit()
        return self._windows.pop((site, device), None) is not None
