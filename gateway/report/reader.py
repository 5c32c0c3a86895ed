"""Builds a report: reads the alarm store's history (only through its read methods) and
hands the rows to the pure figures."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from gateway.actuate.wire import CommandRecord
from gateway.alarms.rows import AlarmRow
from gateway.audit import AuditRecord, query_readonly
from gateway.audit.query import MAX_LIMIT
from gateway.config.clockface import Clockface
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig
from gateway.duty.model import parse_hhmm
from gateway.duty.readonly import checks_of_readonly
from gateway.hazards.readonly import ledger_readonly
from gateway.incidents.readonly import incidents_touching
from gateway.report.figures import (
    LoopRows,
    check_day_in_period,
    compose_report,
    device_key,
    devices_of,
)
from gateway.report.model import (
    ACTION_COMMANDS,
    DailyReport,
    DeviceInfo,
    Period,
    PeriodNotStarted,
    UnknownSite,
)
from gateway.report.period import report_period
from gateway.status.device import device_state, state_from_alarms
from rules.engine import DeviceStatus
from rules.model import DeviceRef

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class ReadableStore(Protocol):
    """What the report reads of the alarm store: its history reads (`AlarmStore` has them,
    and `ReadOnlyHistory` over a connection of the caller's own)."""

    async def alarm_history(
        self,
        sites: Sequence[str],
        start: float,
        until: float,
        types: Sequence[str] = (),
    ) -> list[AlarmRow]: ...

    async def commands_sent(
        self, sites: Sequence[str], cmds: Sequence[str], start: float, end: float
    ) -> list[CommandRecord]: ...


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
    # Alarms up to now, not only to the period's end: "offline now" is about now.
    alarms = await store.alarm_history(ids, start, max(now, period.as_of))
    commands = await store.commands_sent(ids, ACTION_COMMANDS, start, end)
    audit, audit_unreadable = await _people_actions(config, ids, start, end)
    loop = await _closed_loop(config, ids, period, tz)
    devices = devices_of(inventory, ids)
    status_now = (
        _status_from_alarms(devices, alarms, now)
        if engine_status is None
        else {
            device_key(d): device_state(engine_status(DeviceRef(d.site, d.device))).value
            for d in devices
        }
    )
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
        audit=audit,
        audit_unreadable=audit_unreadable,
        loop=loop,
    )


async def _people_actions(
    config: GatewayConfig, sites: Sequence[str], start: float, end: float
) -> tuple[list[AuditRecord], str | None]:
    """The audit trail's rows of people at `sites` in the period, read-only (the CLI makes
    reports without a gateway). A log that cannot be read leaves the section saying so:
    the rest of the report still goes out."""
    path = Path(config.gateway.data_dir) / "audit.sqlite3"
    try:
        rows = await asyncio.to_thread(
            query_readonly, path, since=start, until=end, sites=sites, limit=MAX_LIMIT,
            people_only=True,
        )  # fmt: skip
    except sqlite3.Error as exc:
        log.error("daily report: audit log %s unreadable: %s", path, exc)
        return [], str(exc)
    return rows, None


async def _closed_loop(
    config: GatewayConfig, sites: Sequence[str], period: Period, tz: ZoneInfo
) -> LoopRows:
    """Incidents, the self-reports and the hazard ledger of `sites`, each read read-only
    from its owner's database (the CLI makes reports without a gateway, and opening a store
    would migrate its file). These databases are made when the gateway starts, so a missing
    one is said like an unreadable one: "no incidents" would be a claim the report cannot
    make. Each is read on its own, so one bad file leaves the other sections in."""
    data = Path(config.gateway.data_dir)
    day = check_day_in_period(period, parse_hhmm(config.daily_checks.due), tz)
    incidents, incidents_unreadable = await _read(
        "incidents", incidents_touching, data / "incidents.sqlite3", sites, period.start,
        period.as_of,
    )  # fmt: skip
    checks, duty_unreadable = await _read(
        "duty", checks_of_readonly, data / "duty.sqlite3", day, sites
    )
    ledger, hazards_unreadable = await _read(
        "hazards", ledger_readonly, data / "hazards.sqlite3", sites, period.as_of
    )
    return LoopRows(
        incidents=incidents or [],
        checks=checks or {},
        check_day=day,
        ledger=ledger or [],
        incidents_unreadable=incidents_unreadable,
        duty_unreadable=duty_unreadable,
        hazards_unreadable=hazards_unreadable,
    )


async def _read(what: str, read: Callable[..., _T], *args: object) -> tuple[_T | None, str | None]:
    """`read(*args)` in a worker thread: its rows, or None and why they could not be read."""
    try:
        return await asyncio.to_thread(read, *args), None
    except (OSError, sqlite3.Error, ValueError, KeyError) as exc:
        # ValueError/KeyError: a row the owner's types refuse (a status it does not know).
        log.error("daily report: %s database unreadable: %s", what, exc)
        return None, str(exc) or type(exc).__name__


def _status_from_alarms(
    devices: Sequence[DeviceInfo], alarms: Sequence[AlarmRow], now: float
) -> dict[tuple[str, str], str]:
    """No engine to ask (the CLI): each device's status from its stored alarms."""
    by_device: dict[tuple[str, str], list[AlarmRow]] = {}
    for a in alarms:
        by_device.setdefault((a.site, a.device), []).append(a)
    return {
        device_key(d): state_from_alarms(by_device.get(device_key(d), ()), now).value
        for d in devices
    }
