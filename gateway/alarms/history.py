"""The read side of the alarm store for past periods: the SQL over `alarms`, `alarm_timeline`
and `commands` that the daily report and the bureau overview need, returning typed rows
(`gateway.alarms.rows`). `AlarmStore` has these methods; `ReadOnlyHistory` gives them over a
connection of its own (the CLI reads a store that a running gateway may own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from gateway.alarms.rows import LIFECYCLE_ACTIONS, AlarmRow, CommandRecord, LifecycleEntry
from rules.model import AlarmType


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class HistoryReads:
    """Queries over the stored history, on the `reader` connection of whoever mixes it in."""

    @property
    def reader(self) -> aiosqlite.Connection:
        raise NotImplementedError

    async def alarm_history(
        self,
        sites: Sequence[str],
        start: float,
        until: float,
        types: Sequence[str] = (),
    ) -> list[AlarmRow]:
        """Alarms of `sites` (and `types`, if given) raised by `until` and not closed before
        `start`, with their lifecycle entries in order: every alarm that can concern the
        period [start, until], oldest first."""
        if not sites:
            return []
        where = (
            f"a.site IN ({_marks(len(sites))}) AND a.raised_at <= ? "
            "AND (a.closed_at IS NULL OR a.closed_at >= ?)"
        )
        args: list[Any] = [*sites, until, start]
        if types:
            where += f" AND a.type IN ({_marks(len(types))})"
            args.extend(types)
        db = self.reader
        events: dict[str, list[LifecycleEntry]] = {}
        async with db.execute(
            "SELECT t.alarm_id, t.at, t.action, t.actor, t.severity FROM alarm_timeline t "
            f"JOIN alarms a ON a.id = t.alarm_id WHERE {where} "
            f"AND t.action IN ({_marks(len(LIFECYCLE_ACTIONS))}) ORDER BY t.alarm_id, t.seq",
            (*args, *LIFECYCLE_ACTIONS),
        ) as cur:
            for alarm_id, at, action, actor, severity in await cur.fetchall():
                events.setdefault(alarm_id, []).append(LifecycleEntry(at, action, actor, severity))
        async with db.execute(
            "SELECT a.id, a.site, a.device, a.type, a.severity, a.state, a.raised_at, "
            "a.acked_at, a.acked_by, a.cleared_at, a.closed_at, a.closed_by, a.disposition "
            f"FROM alarms a WHERE {where} ORDER BY a.raised_at, a.id",
            args,
        ) as cur:
            rows = await cur.fetchall()
        return [
            AlarmRow(
                id=r[0], site=r[1], device=r[2], type=r[3], severity=r[4], state=r[5],
                raised_at=r[6], acked_at=r[7], acked_by=r[8], cleared_at=r[9], closed_at=r[10],
                closed_by=r[11], disposition=r[12], events=tuple(events.get(r[0], ())),
            )
            for r in rows
        ]  # fmt: skip

    async def offline_alarm_history(
        self, sites: Sequence[str], start: float, now: float
    ) -> list[AlarmRow]:
        """The `device_offline` alarms of `sites` that may touch [start, now], for the
        devices' offline intervals (`gateway.status.availability`). Open ones may lag the
        alarm book by one commit: the caller lays `AlarmRow.of(book alarm)` over them."""
        return await self.alarm_history(sites, start, now, (AlarmType.DEVICE_OFFLINE.value,))

    async def commands_sent(
        self, sites: Sequence[str], cmds: Sequence[str], start: float, end: float
    ) -> list[CommandRecord]:
        """Commands `cmds` to devices of `sites` sent in [start, end), in the order sent."""
        if not sites or not cmds:
            return []
        async with self.reader.execute(
            "SELECT id, site, device, cmd, requested_by, alarm_id, reason, sent_at, result, "
            f"result_at, detail FROM commands WHERE site IN ({_marks(len(sites))}) "
            f"AND cmd IN ({_marks(len(cmds))}) AND sent_at >= ? AND sent_at < ? "
            "ORDER BY sent_at, id",
            (*sites, *cmds, start, end),
        ) as cur:
            return [CommandRecord(*row) for row in await cur.fetchall()]


class ReadOnlyHistory(HistoryReads):
    """The history reads over a connection the caller opened (and closes)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @property
    def reader(self) -> aiosqlite.Connection:
        return self._conn
