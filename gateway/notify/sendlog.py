"""The escalation send log: the `escalation_sends` table, of which this module is the only
reader and writer.

`gateway.notify.policy` decides which step of which alarm goes out when; this module
remembers those decisions. Rows are written before the worker acts on them and again with
their outcome, so a restart neither repeats a step that went out nor skips one that fell due
while the gateway was down. The table lives in the alarms' SQLite file, so one backup holds
an alarm and what was done to tell people of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from gateway.notify.policy import Send, SendKey, SendState
from gateway.storage import migrate
from gateway.storage.schemas import ALARMS

_UPSERT = (
    "INSERT INTO escalation_sends (alarm_id, occurrence, step, repeat, site, severity, "
    "due_at, state, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (alarm_id, occurrence, step, repeat) DO UPDATE SET "
    "state = excluded.state, sent_at = excluded.sent_at"
)


class SendLog:
    """One connection of its own to the alarms' database, opened by `open`."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._db: aiosqlite.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def open(self) -> None:
        await migrate.ensure(self._path, ALARMS)
        self._db = await aiosqlite.connect(self._path)
        await self._db.execute("PRAGMA journal_mode=WAL")

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def load(self, sent_since: float) -> list[Send]:
        """Every pending send, and the finished ones since `sent_since`: the latter tell the
        policy when each group last went out, so a restart keeps the grouping windows."""
        assert self._db is not None
        async with self._db.execute(
            "SELECT alarm_id, occurrence, step, repeat, site, severity, due_at, state, sent_at "
            "FROM escalation_sends WHERE state = 'pending' OR sent_at > ?",
            (sent_since,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            Send(SendKey(r[0], r[1], r[2], r[3]), r[4], r[5], r[6], SendState(r[7]), r[8])
            for r in rows
        ]

    async def save(self, sends: Sequence[Send]) -> None:
        """New rows and changed states, in one transaction."""
        if not sends or self._db is None:
            return
        await self._db.executemany(
            _UPSERT,
            [
                (
                    s.key.alarm_id,
                    s.key.occurrence,
                    s.key.step,
                    s.key.repeat,
                    s.site,
                    s.severity,
                    s.due_at,
                    s.state.value,
                    s.sent_at,
                )
                for s in sends
            ],
        )
        await self._db.commit()
