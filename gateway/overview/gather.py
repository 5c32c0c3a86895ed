"""What the overview's figures are computed from, read with one `now`: each device's
offline intervals (from the alarm store, with the alarm book's newer open alarms laid over
them), its state, and per site the summarized row. The figures themselves are `queries`'
pure functions; the HTTP routes that serve them are `gateway.http.overview`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.alarms.book import Alarm, AlarmBook
from gateway.alarms.history import HistoryReads
from gateway.alarms.rows import AlarmRow
from gateway.central.edges import EdgeWatch
from gateway.config.schema import SiteConfig
from gateway.overview.queries import WINDOW_S, DeviceSnapshot, SiteRow, summarize_site
from gateway.status.availability import Interval, availability, intervals_by_device
from gateway.status.device import device_state
from rules.engine import RuleEngine
from rules.model import AlarmType, DeviceRef


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
