"""What the overview's figures are computed from, read from a running gateway with one `now`:
each device's offline intervals (store and alarm book), its state (`device_snapshots`), and
per site the summarized row (`site_rows`). The figures themselves are `queries`' pure
functions; the HTTP routes that serve them are `gateway.http.overview`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.alarms.book import Alarm
from gateway.config.schema import SiteConfig
from gateway.overview.queries import (
    WINDOW_S,
    DeviceSnapshot,
    Interval,
    SiteRow,
    alarm_offline_intervals,
    availability,
    summarize_site,
)
from rules.model import AlarmType, DeviceRef

if TYPE_CHECKING:
    from gateway.app.supervisor import Gateway


async def offline_intervals(
    gw: Gateway, sites: Sequence[str], start: float, now: float
) -> dict[DeviceRef, list[Interval]]:
    """Every device's `device_offline` intervals that may touch [start, now]: closed and
    open alarms from the store, the open ones as the alarm book has them (newer than the
    store by at most one commit)."""
    found: dict[str, tuple[DeviceRef, float, str, float | None, float | None]] = {}
    events: dict[str, list[tuple[float, str]]] = {}
    if sites:
        marks = ", ".join("?" * len(sites))
        async with gw.store.reader.execute(
            "SELECT a.id, a.site, a.device, a.raised_at, a.state, a.cleared_at, a.closed_at, "
            "t.at, t.action FROM alarms a LEFT JOIN alarm_timeline t ON t.alarm_id = a.id "
            "AND t.action IN ('raised', 'returned', 'cleared', 'closed') "
            f"WHERE a.type = ? AND a.site IN ({marks}) AND a.raised_at < ? "
            "AND (a.closed_at IS NULL OR a.closed_at > ?)",
            (AlarmType.DEVICE_OFFLINE.value, *sites, now, start),
        ) as cur:
            for (
                alarm_id,
                site,
                device,
                raised,
                state,
                cleared,
                closed,
                at,
                action,
            ) in await cur.fetchall():
                found[alarm_id] = (DeviceRef(site, device), raised, state, cleared, closed)
                if at is not None:
                    events.setdefault(alarm_id, []).append((at, action))
    wanted = set(sites)
    for a in gw.book.open_alarms():
        if a.type is AlarmType.DEVICE_OFFLINE and a.site in wanted:
            found[a.id] = (
                DeviceRef(a.site, a.device),
                a.raised_at,
                a.state.value,
                a.cleared_at,
                a.closed_at,
            )
            events[a.id] = [(e.at, e.action.value) for e in a.timeline]
    out: dict[DeviceRef, list[Interval]] = {}
    for alarm_id, (ref, raised, state, cleared, closed) in found.items():
        out.setdefault(ref, []).extend(
            alarm_offline_intervals(raised, state, cleared, closed, events.get(alarm_id, ()), now)
        )
    return out


def device_snapshots(gw: Gateway, site: SiteConfig) -> list[DeviceSnapshot]:
    out = []
    for dev in site.devices:
        ref = DeviceRef(site.id, dev.id)
        view = gw.device_view(ref)
        if view is None:
            continue
        out.append(
            DeviceSnapshot(dev.id, view["status"], gw.engine.status(ref).last_seen, dev.location)
        )
    return out


async def site_rows(gw: Gateway, sites: Sequence[SiteConfig], now: float) -> list[SiteRow]:
    start = now - WINDOW_S
    offline = await offline_intervals(gw, [s.id for s in sites], start, now)
    alarms_by_site: dict[str, list[Alarm]] = {}
    for a in gw.book.open_alarms():
        alarms_by_site.setdefault(a.site, []).append(a)
    rows = []
    for site in sites:
        devices = device_snapshots(gw, site)
        known = [DeviceRef(site.id, d.device) for d in devices if d.state != "unknown"]
        avail = availability(known, offline, start, now)
        edge = gw.central.edges.get(site.id)
        rows.append(summarize_site(site, devices, alarms_by_site.get(site.id, []), avail, edge))
    return rows
