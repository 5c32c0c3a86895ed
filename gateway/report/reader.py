"""Reads the store (read-only) and builds a report from it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiosqlite

from gateway.actuate.wire import CommandRecord
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig
from gateway.report.figures import (
    compose_report,
    device_key,
    devices_of,
    status_from_alarms,
    status_from_engine,
)
from gateway.report.model import (
    ACTION_COMMANDS,
    LIFECYCLE_ACTIONS,
    AlarmRow,
    DailyReport,
    LifecycleEntry,
    Period,
    PeriodNotStarted,
    UnknownSite,
)
from gateway.report.period import report_period
from gateway.status.views import Clockface
from rules.engine import DeviceStatus
from rules.model import DeviceRef


class ReadableStore(Protocol):
    """What the report needs of a store: its read connection (`AlarmStore` has it)."""

    @property
    def reader(self) -> aiosqlite.Connection: ...


def _marks(n: int) -> str:
    return ", ".join("?" * n)


async def read_alarms(
    db: aiosqlite.Connection, sites: Sequence[str], start: float, until: float
) -> list[AlarmRow]:
    """Alarms of `sites` raised by `until` and not closed before `start`, with their
    lifecycle entries: every alarm the period, the report time or "now" can concern."""
    where = (
        f"a.site IN ({_marks(len(sites))}) AND a.raised_at <= ? "
        "AND (a.closed_at IS NULL OR a.closed_at >= ?)"
    )
    args: list[Any] = [*sites, until, start]
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
        "SELECT a.id, a.site, a.device, a.type, a.severity, a.state, a.raised_at, a.acked_at, "
        "a.acked_by, a.cleared_at, a.closed_at, a.closed_by, a.disposition FROM alarms a "
        f"WHERE {where} ORDER BY a.raised_at, a.id",
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


async def read_commands(
    db: aiosqlite.Connection, sites: Sequence[str], start: float, end: float
) -> list[CommandRecord]:
    async with db.execute(
        "SELECT id, site, device, cmd, requested_by, alarm_id, reason, sent_at, result, "
        f"result_at, detail FROM commands WHERE site IN ({_marks(len(sites))}) "
        f"AND cmd IN ({_marks(len(ACTION_COMMANDS))}) AND sent_at >= ? AND sent_at < ? "
        "ORDER BY sent_at, id",
        (*sites, *ACTION_COMMANDS, start, end),
    ) as cur:
        return [CommandRecord(*row) for row in await cur.fetchall()]


async def build_daily_report(
    store: ReadableStore,
    config: GatewayConfig,
    inventory: Inventory,
    engine_status: Callable[[DeviceRef], DeviceStatus] | None,
    day: date,
    site: str | None,
    now: float,
) -> DailyReport:
    """The report for `day`: one site's, or the county's (`site` None) with every site.

    `now` bounds what it can see: a report asked for before the period ends covers the
    period so far (`period.complete` is false). Devices' "offline now" come from
    `engine_status` when given (the running gateway), else from the store's alarms.
    Raises UnknownSite, or PeriodNotStarted for a day whose period lies in the future.
    """
    tz = ZoneInfo(config.gateway.timezone)
    if site is None:
        sites = list(config.sites)
    else:
        found = next((s for s in config.sites if s.id == site), None)
        if found is None:
            raise UnknownSite(site)
        sites = [found]
    start, end = report_period(day, config.report.time, tz)
    if now < start:
        raise PeriodNotStarted(
            f"the report period for {day} starts at {Clockface(config.gateway.timezone).iso(start)}"
        )
    period = Period(day, start, end, min(end, now))
    ids = [s.id for s in sites]
    db = store.reader
    alarms = await read_alarms(db, ids, start, max(now, period.as_of))
    commands = await read_commands(db, ids, start, end)
    devices = devices_of(inventory, ids)
    if engine_status is not None:
        status_now = {
            device_key(d): status_from_engine(engine_status(DeviceRef(d.site, d.device)))
            for d in devices
        }
    else:
        status_now = {device_key(d): status_from_alarms(alarms, d, now) for d in devices}
    return compose_report(
        config,
        sites,
        devices,
        alarms,
        commands,
        period,
        status_now,
        county=site is None,
        generated_at=now,
        status_source="engine" if engine_status is not None else "alarms",
    )
