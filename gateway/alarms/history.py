"""The read side of the alarm store: every SELECT over `alarms`, `alarm_timeline`,
`commands` and `seen_messages`. With `gateway.alarms.store` (the schema and the one writer)
it is the one owner of those tables; nobody else has their SQL.

The open alarms at start-up, one alarm and the API's lists come back as the book's `Alarm`
and `CommandRecord`; the history of past periods that the daily report and the bureau
overview need comes back as frozen rows (`gateway.alarms.rows`). `AlarmStore` has these
methods; `ReadOnlyHistory` gives them over a connection of its own (the CLI reads a store
that a running gateway may own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite
import orjson

from gateway.alarms.book import Action, Alarm, AlarmState, Disposition, TimelineEntry
from gateway.alarms.rows import LIFECYCLE_ACTIONS, AlarmRow, CommandRecord, LifecycleEntry
from rules.model import AlarmType, Severity

# The columns of `alarms` in the order `gateway.storage.schemas.ALARMS` declares them: what a
# read selects and the writer's upsert binds.
ALARM_COLUMNS = (
    "id, site, device, type, severity, level, state, latched, acked, value, peak, count, "
    "reason, raised_at, acked_at, acked_by, cleared_at, closed_at, closed_by, disposition, "
    "note, updated_at"
)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class HistoryReads:
    """Queries over the stored alarms and commands, on the `reader` connection of whoever
    mixes it in."""

    @property
    def reader(self) -> aiosqlite.Connection:
        raise NotImplementedError

    # ------------------------------------------------------ the alarms of now
    async def load_open(self) -> list[Alarm]:
        rows = await self._select("WHERE state != 'closed' ORDER BY raised_at", ())
        return await self._with_timelines(rows)

    async def get(self, alarm_id: str) -> Alarm | None:
        rows = await self._select("WHERE id = ?", (alarm_id,))
        alarms = await self._with_timelines(rows)
        return alarms[0] if alarms else None

    async def query(
        self,
        *,
        states: Sequence[str] = (),
        sites: Sequence[str] | None = None,
        types: Sequence[str] = (),
        device: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 200,
    ) -> list[Alarm]:
        where: list[str] = []
        args: list[Any] = []
        for column, values in (("state", states), ("type", types)):
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        if sites is not None:
            where.append(f"site IN ({', '.join('?' * len(sites))})" if sites else "0")
            args.extend(sites)
        if device is not None:
            where.append("device = ?")
            args.append(device)
        if since is not None:
            where.append("raised_at >= ?")
            args.append(since)
        if until is not None:
            where.append("raised_at < ?")
            args.append(until)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = await self._select(f"{clause} ORDER BY raised_at DESC LIMIT ?", (*args, limit))
        return [_alarm_from_row(r) for r in rows]

    async def commands(self, limit: int = 100) -> list[CommandRecord]:
        async with self.reader.execute(
            "SELECT id, site, device, cmd, requested_by, alarm_id, reason, sent_at, result, "
            "result_at, detail FROM commands ORDER BY sent_at DESC LIMIT ?",
            (limit,),
        ) as cur:
            return [CommandRecord(*row) for row in await cur.fetchall()]

    async def _select(self, tail: str, args: Sequence[Any]) -> list[Any]:
        async with self.reader.execute(f"SELECT {ALARM_COLUMNS} FROM alarms {tail}", args) as cur:
            return list(await cur.fetchall())

    async def _with_timelines(self, rows: list[Any]) -> list[Alarm]:
        alarms = [_alarm_from_row(r) for r in rows]
        for alarm in alarms:
            async with self.reader.execute(
                "SELECT seq, at, action, actor, reason, value, severity, note, detail "
                "FROM alarm_timeline WHERE alarm_id = ? ORDER BY seq",
                (alarm.id,),
            ) as cur:
                for (
                    seq,
                    at,
                    action,
                    actor,
                    reason,
                    value,
                    severity,
                    note,
                    detail,
                ) in await cur.fetchall():
                    alarm.timeline.append(
                        TimelineEntry(
                            at,
                            Action(action),
                            actor,
                            reason,
                            value,
                            Severity(severity) if severity else None,
                            note,
                            orjson.loads(detail) if detail else None,
                            seq,
                        )
                    )
            # Numbered on from the last entry: elided repeats leave gaps, not reusable seqs.
            if alarm.timeline:
                alarm.next_seq = alarm.timeline[-1].seq + 1
            alarm.repeats.elided = alarm.next_seq - len(alarm.timeline)
        return alarms

    async def load_seen(self, since: float) -> list[tuple[int, int, int]]:
        """Keys (lane, packet id, digest) of messages that caused writes since `since`
        (`gateway.ingest.redelivery`)."""
        async with self.reader.execute(
            "SELECT lane, mid, digest FROM seen_messages WHERE at >= ?", (since,)
        ) as cur:
            return [(lane, mid, d) for lane, mid, d in await cur.fetchall()]

    # ------------------------------------------------------------ past periods
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


def _alarm_from_row(r: Sequence[Any]) -> Alarm:
    return Alarm(
        id=r[0], site=r[1], device=r[2], type=AlarmType(r[3]), severity=Severity(r[4]),
        level=r[5], state=AlarmState(r[6]), latched=bool(r[7]), acked=bool(r[8]), value=r[9],
        peak=r[10], count=r[11], reason=r[12], raised_at=r[13], acked_at=r[14], acked_by=r[15],
        cleared_at=r[16], closed_at=r[17], closed_by=r[18],
        disposition=Disposition(r[19]) if r[19] else None, note=r[20], updated_at=r[21],
    )  # fmt: skip


class ReadOnlyHistory(HistoryReads):
    """The reads over a connection the caller opened (and closes)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @property
    def reader(self) -> aiosqlite.Connection:
        return self._conn
