"""What the overview's figures are computed from, read with one `now`: each device's
offline intervals (from the alarm store, with the alarm book's newer open alarms laid over
them), its state, and per site the summarized row. The figures themselves are `queries`'
pure functions; the HTTP routes that serve them are `gateway.http.overview`."""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from gateway.alarms.book import Alarm, AlarmBook
from gateway.alarms.history import HistoryReads
from gateway.alarms.rows import AlarmRow
from gateway.central.edges import EdgeWatch
from gateway.config.schema import SiteConfig
from gateway.duty.store import DutyStore
from gateway.hazards.store import HazardStore
from gateway.incidents.readonly import incidents_touching
from gateway.incidents.store import IncidentStore
from gateway.overview.loop import LoopReads
from gateway.overview.queries import WINDOW_S, DeviceSnapshot, SiteRow, summarize_site
from gateway.status.availability import Interval, availability, intervals_by_device
from gateway.status.device import device_state
from gateway.storage.owned import DatabaseUnavailable
from rules.engine import RuleEngine
from rules.model import AlarmType, DeviceRef

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class OverviewSources:
    store: HistoryReads
    book: AlarmBook
    engine: RuleEngine
    edges: EdgeWatch


async def offline_intervals(
    src: OverviewSources, sites: Sequence[str], start: float, now: float
) -> dict[DeviceRef, list[Interval]]:
    """Every device's `device_offline` intervals that may touch [start, now]."""
    rows = {r.id: r for r in await src.store.offline_alarm_history(sites, start, now)}
    wanted = set(sites)
    for a in src.book.open_alarms():
        if a.type is AlarmType.DEVICE_OFFLINE and a.site in wanted:
            rows[a.id] = AlarmRow.of(a)  # the book is ahead of the store by one commit
    found = intervals_by_device(rows.values(), AlarmType.DEVICE_OFFLINE.value, now)
    return {DeviceRef(site, device): spans for (site, device), spans in found.items()}


def device_snapshots(src: OverviewSources, site: SiteConfig) -> list[DeviceSnapshot]:
    out = []
    for dev in site.devices:
        ref = DeviceRef(site.id, dev.id)
        # The site list was read before an await: a reload may have removed the device since.
        if not src.engine.knows(ref):
            continue
        status = src.engine.status(ref)
        out.append(
            DeviceSnapshot(dev.id, device_state(status).value, status.last_seen, dev.location)
        )
    return out


async def site_rows(src: OverviewSources, sites: Sequence[SiteConfig], now: float) -> list[SiteRow]:
    start = now - WINDOW_S
    offline = await offline_intervals(src, [s.id for s in sites], start, now)
    alarms_by_site: dict[str, list[Alarm]] = {}
    for a in src.book.open_alarms():
        alarms_by_site.setdefault(a.site, []).append(a)
    rows = []
    for site in sites:
        devices = device_snapshots(src, site)
        known = [DeviceRef(site.id, d.device) for d in devices if d.state != "unknown"]
        avail = availability(known, offline, start, now)
        edge = src.edges.get(site.id)
        rows.append(summarize_site(site, devices, alarms_by_site.get(site.id, []), avail, edge))
    return rows


# ------------------------------------------------------------------------ the closed loop
@dataclass(frozen=True, slots=True)
class LoopSources:
    """The closed loop's three owners, as the running gateway holds them."""

    incidents: IncidentStore
    hazards: HazardStore
    duty: DutyStore


async def read_loop(src: LoopSources, sites: Sequence[str], now: float, today: date) -> LoopReads:
    """The loop's rows for `sites`: one read per owner for all of them (the overview is
    polled by every bureau page), each bounded by what is still open (open incidents, hazards
    not yet rectified, today's self-reports). The open incidents come from the owner's
    read-only reader (its store has no read of the open ones); the others from the stores."""
    if not sites:
        return LoopReads((), (), {})
    # Since and until `now`: the incidents not closed by now (and any opened in the same
    # instant, hence the next float).
    until = math.nextafter(now, math.inf)
    (incidents, why_i), (hazards, why_h), (checks, why_d) = await asyncio.gather(
        _read("incidents", incidents_touching, src.incidents.path, sites, now, until),
        _read("hazards", src.hazards.to_rectify, sites),
        _read("duty", src.duty.checks_of, today, set(sites)),
    )
    unreadable = {
        what: why
        for what, why in (("incidents", why_i), ("hazards", why_h), ("duty", why_d))
        if why is not None
    }
    return LoopReads(incidents, hazards, checks, unreadable)


async def _read(what: str, read: Callable[..., _T], *args: object) -> tuple[_T | None, str | None]:
    """`read(*args)` in a worker thread: its rows, or None and why they could not be read.
    Never raises for a database: the alarm figures beside it still go out."""
    try:
        return await asyncio.to_thread(read, *args), None
    except (OSError, sqlite3.Error, DatabaseUnavailable, ValueError, KeyError) as exc:
        # ValueError/KeyError: a row the owner's types refuse. Debug, not warning: every
        # bureau page asks every 10 s, and /api/health says a store is down already.
        log.debug("overview: %s unreadable: %s", what, exc)
        return None, str(exc) or type(exc).__name__
