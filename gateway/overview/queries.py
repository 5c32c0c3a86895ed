"""The county bureau's overview (DESIGN section 8: `GET /api/overview`, the `/bureau` page).

Functional core, imperative shell. The figures are computed by plain functions that take
data (device states, open alarms, offline intervals, `now`) and return data:
`site_status`, `summarize_site` and `sort_sites`; the offline intervals and the online rate
are `gateway.status.availability`'s (re-exported here), the same as the daily report's.
`register_overview_routes` is the shell: it reads the gateway (inventory, rule engine,
alarm book, store) once per request, with one `now`.

Online rate over 24 h: device-time online / device-time in the window [now - 24 h, now],
for the devices known now (heard since start, or offline); a device not heard from since
start-up is `unknown` and left out. Offline time is the union of the device's
`device_offline` alarm intervals (raised or returned -> cleared or closed, or now while
active; from the alarm's timeline) clipped to the window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from gateway.alarms.book import Alarm, AlarmState
from gateway.app.supervisor import Gateway
from gateway.central.edges import EdgeLink, EdgeState, edge_json
from gateway.config.schema import SiteConfig, SiteKind
from gateway.status.availability import Availability as Availability  # noqa: PLC0414
from gateway.status.availability import Interval as Interval  # noqa: PLC0414
from gateway.status.availability import alarm_intervals
from gateway.status.availability import availability as availability  # noqa: PLC0414
from gateway.status.availability import clipped_total as clipped_total  # noqa: PLC0414
from gateway.status.availability import merge_intervals as merge_intervals  # noqa: PLC0414
from gateway.status.device import DeviceState
from gateway.status.views import Clockface
from rules.model import AlarmType, DeviceRef, Severity

BUREAU_DIR = Path(__file__).parent.parent / "web" / "bureau"  # the bureau's page: static files
WINDOW_S = 24 * 3600.0
RECENT_LIMIT = 500

KIND_LABELS: dict[SiteKind, str] = {
    SiteKind.ELDERLY_CARE: "养老机构",
    SiteKind.CHILD_WELFARE: "儿童福利机构",
    SiteKind.RELIEF_STATION: "救助管理站",
    SiteKind.FUNERAL: "殡葬服务机构",
    SiteKind.MARRIAGE_REGISTRY: "婚姻登记处",
    SiteKind.OTHER: "其他",
}
DEVICE_STATES = tuple(s.value for s in DeviceState)  # online, offline, fault, unknown
SEVERITIES = tuple(s.value for s in Severity)  # critical, major, minor, warning


# --------------------------------------------------------------------------- status
class SiteStatus(StrEnum):
    ALARM = "alarm"  # a critical or major alarm is open
    WARNING = "warning"  # other open alarms, or devices offline or faulty
    OK = "ok"

    @property
    def rank(self) -> int:
        """Lower sorts first: the site that needs attention most."""
        return _STATUS_RANK[self]


_STATUS_RANK = {SiteStatus.ALARM: 0, SiteStatus.WARNING: 1, SiteStatus.OK: 2}


class StatusReason(StrEnum):
    CRITICAL_OPEN = "critical_open"
    MAJOR_OPEN = "major_open"
    MINOR_OPEN = "minor_open"
    WARNING_OPEN = "warning_open"
    DEVICES_OFFLINE = "devices_offline"
    DEVICES_FAULT = "devices_fault"
    NOTHING_OPEN = "nothing_open"
    EDGE_GATEWAY_OFFLINE = "edge_gateway_offline"  # nothing protects the site
    EDGE_UPLINK_DOWN = "edge_uplink_down"  # the bureau cannot see the site


def site_status(
    open_by_severity: Mapping[str, int],
    devices_by_status: Mapping[str, int],
    edge: EdgeState | None = None,
) -> tuple[SiteStatus, StatusReason]:
    """The site's colour, with the reason that decided it (the most serious one).

    An edge site whose gateway is offline is red: its gas shut-off and phones are down,
    and the bureau does not act for it. An edge site whose uplink is down is at least amber:
    the bureau sees nothing of it, so its figures are stale."""
    if open_by_severity.get("critical", 0) > 0:
        return SiteStatus.ALARM, StatusReason.CRITICAL_OPEN
    if edge is EdgeState.GATEWAY_OFFLINE:
        return SiteStatus.ALARM, StatusReason.EDGE_GATEWAY_OFFLINE
    if open_by_severity.get("major", 0) > 0:
        return SiteStatus.ALARM, StatusReason.MAJOR_OPEN
    if edge is EdgeState.UPLINK_DOWN:
        return SiteStatus.WARNING, StatusReason.EDGE_UPLINK_DOWN
    for severity, reason in (
        ("minor", StatusReason.MINOR_OPEN),
        ("warning", StatusReason.WARNING_OPEN),
    ):
        if open_by_severity.get(severity, 0) > 0:
            return SiteStatus.WARNING, reason
    if devices_by_status.get("offline", 0) > 0:
        return SiteStatus.WARNING, StatusReason.DEVICES_OFFLINE
    if devices_by_status.get("fault", 0) > 0:
        return SiteStatus.WARNING, StatusReason.DEVICES_FAULT
    return SiteStatus.OK, StatusReason.NOTHING_OPEN


# ---------------------------------------------------------------- online rate (24 h)
# One implementation, shared with the daily report (gateway.status.availability); the old
# name stays for the shell and the tests.
alarm_offline_intervals = alarm_intervals


# --------------------------------------------------------------------- site summary
@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    device: str
    state: str  # online | offline | fault | unknown (as in the device JSON)
    last_seen: float | None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class SiteRow:
    id: str
    name: str
    kind: SiteKind
    served_by: str
    devices: dict[str, int]
    open_alarms: dict[str, int]
    unacknowledged: int
    oldest_unacknowledged: Alarm | None
    last_contact: float | None
    availability: Availability
    status: SiteStatus
    status_reason: StatusReason
    locations: dict[str, str | None] = field(default_factory=dict)
    edge: EdgeLink | None = None  # sites served by an edge gateway

    @property
    def online_rate(self) -> float | None:
        return self.availability.rate


def summarize_site(
    site: SiteConfig,
    devices: Sequence[DeviceSnapshot],
    open_alarms: Iterable[Alarm],
    avail: Availability,
    edge: EdgeLink | None = None,
) -> SiteRow:
    """One site's figures from its devices' states and its open (not closed) alarms."""
    by_status = dict.fromkeys(DEVICE_STATES, 0)
    for d in devices:
        by_status[d.state] = by_status.get(d.state, 0) + 1
    by_severity = dict.fromkeys(SEVERITIES, 0)
    unacked: list[Alarm] = []
    for a in open_alarms:
        if a.state is AlarmState.CLOSED:
            continue
        by_severity[a.severity.value] += 1
        if not a.acked:
            unacked.append(a)
    oldest = min(unacked, key=lambda a: (a.raised_at, a.id)) if unacked else None
    seen = [d.last_seen for d in devices if d.last_seen is not None]
    status, reason = site_status(by_severity, by_status, edge.state if edge else None)
    return SiteRow(
        id=site.id,
        name=site.name,
        kind=site.kind,
        served_by=site.served_by,
        devices=by_status,
        open_alarms=by_severity,
        unacknowledged=len(unacked),
        oldest_unacknowledged=oldest,
        last_contact=max(seen) if seen else None,
        availability=avail,
        status=status,
        status_reason=reason,
        locations={d.device: d.location for d in devices},
        edge=replace(edge) if edge else None,  # a copy: the figures of one moment
    )


# -------------------------------------------------------------------------- sorting
class SortKey(StrEnum):
    SEVERITY = "severity"  # sites with critical alarms first, then major, ..., then ok
    NAME = "name"
    KIND = "kind"
    ONLINE_RATE = "online_rate"  # lowest first; sites with no known device last
    LAST_CONTACT = "last_contact"  # longest silent first; never heard from first of all


_KIND_ORDER = {k: i for i, k in enumerate(SiteKind)}


def _severity_key(r: SiteRow) -> tuple[Any, ...]:
    o, d = r.open_alarms, r.devices
    return (
        r.status.rank,
        -o["critical"],
        -o["major"],
        -o["minor"],
        -o["warning"],
        -(d["offline"] + d["fault"]),
        -r.unacknowledged,
        r.name,
        r.id,
    )


def sort_sites(rows: Iterable[SiteRow], key: SortKey, reverse: bool = False) -> list[SiteRow]:
    """Sites in the order a key asks for; `reverse` turns it round. A site without an
    online rate stays last either way (it has no figure to compare)."""
    if key is SortKey.SEVERITY:
        return sorted(rows, key=_severity_key, reverse=reverse)
    if key is SortKey.NAME:
        return sorted(rows, key=lambda r: (r.name, r.id), reverse=reverse)
    if key is SortKey.KIND:
        return sorted(rows, key=lambda r: (_KIND_ORDER[r.kind], r.name, r.id), reverse=reverse)
    if key is SortKey.ONLINE_RATE:
        listed = list(rows)
        rated = [r for r in listed if r.online_rate is not None]
        unrated = sorted((r for r in listed if r.online_rate is None), key=lambda r: (r.name, r.id))
        rated.sort(key=lambda r: (r.online_rate, r.name, r.id), reverse=reverse)
        return rated + unrated
    # last contact: never heard (None) counts as the longest silence
    return sorted(
        rows,
        key=lambda r: (r.last_contact is not None, r.last_contact or 0.0, r.name, r.id),
        reverse=reverse,
    )


# ----------------------------------------------------------------------------- JSON
def oldest_json(
    a: Alarm | None, location: str | None, now: float, clock: Clockface
) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "id": a.id,
        "site": a.site,
        "type": a.type.value,
        "severity": a.severity.value,
        "raised_at": clock.iso(a.raised_at),
        "age_s": max(0, math.floor(now - a.raised_at)),
        "device": a.device,
        "location": location,
    }


def row_json(r: SiteRow, now: float, clock: Clockface) -> dict[str, Any]:
    oldest = r.oldest_unacknowledged
    return {
        "id": r.id,
        "name": r.name,
        "kind": r.kind.value,
        "kind_label": KIND_LABELS[r.kind],
        "served_by": r.served_by,
        "status": r.status.value,
        "status_reason": r.status_reason.value,
        "devices": dict(r.devices),
        "device_total": sum(r.devices.values()),
        "open_alarms": dict(r.open_alarms),
        "open_total": sum(r.open_alarms.values()),
        "unacknowledged": r.unacknowledged,
        "oldest_unacknowledged": oldest_json(
            oldest, r.locations.get(oldest.device) if oldest else None, now, clock
        ),
        "last_contact": clock.iso(r.last_contact),
        "online_rate_24h": r.online_rate,
        "edge": edge_json(r.edge, clock),
    }


def totals_json(rows: Sequence[SiteRow], now: float, clock: Clockface) -> dict[str, Any]:
    """County figures over the given sites (all the caller may read, after any filter)."""
    devices = dict.fromkeys(DEVICE_STATES, 0)
    alarms = dict.fromkeys(SEVERITIES, 0)
    by_status = {s.value: 0 for s in SiteStatus}
    avail = Availability()
    for r in rows:
        by_status[r.status.value] += 1
        for k, n in r.devices.items():
            devices[k] = devices.get(k, 0) + n
        for k, n in r.open_alarms.items():
            alarms[k] += n
        avail = avail + r.availability
    with_oldest = [r for r in rows if r.oldest_unacknowledged is not None]
    oldest_row = min(
        with_oldest,
        key=lambda r: (r.oldest_unacknowledged.raised_at, r.id),  # type: ignore[union-attr]
        default=None,
    )
    oldest = None
    if oldest_row is not None and oldest_row.oldest_unacknowledged is not None:
        a = oldest_row.oldest_unacknowledged
        oldest = oldest_json(a, oldest_row.locations.get(a.device), now, clock)
        assert oldest is not None
        oldest["site_name"] = oldest_row.name
    contacts = [r.last_contact for r in rows if r.last_contact is not None]
    return {
        "sites": len(rows),
        "by_status": by_status,
        "devices": devices,
        "device_total": sum(devices.values()),
        "open_alarms": alarms,
        "open_total": sum(alarms.values()),
        "unacknowledged": sum(r.unacknowledged for r in rows),
        "oldest_unacknowledged": oldest,
        "last_contact": clock.iso(max(contacts) if contacts else None),
        "online_rate_24h": avail.rate,
    }


# ---------------------------------------------------------------------------- shell
class _Reader(Protocol):
    """The API's principal, as far as reading goes (gateway.http.app.Principal)."""

    def may_read(self, site: str) -> bool: ...


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


def _reader(request: Request) -> _Reader:
    # The API's own authentication (app.state.auth, gateway.http.app.Auth): bearer tokens.
    return request.app.state.auth.principal(  # type: ignore[no-any-return]
        request.headers.get("authorization")
    )


GatewayDep = Annotated[Gateway, Depends(_gateway)]
ReaderDep = Annotated[_Reader, Depends(_reader)]


def _api_error(status: int, error: str, detail: Any = None) -> Exception:
    # Imported here: gateway.http.app imports this module to register the routes.
    from gateway.http.app import ApiError

    return ApiError(status, error, detail)


async def _offline_intervals(
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


def _device_snapshots(gw: Gateway, site: SiteConfig) -> list[DeviceSnapshot]:
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


async def _rows(gw: Gateway, sites: Sequence[SiteConfig], now: float) -> list[SiteRow]:
    start = now - WINDOW_S
    offline = await _offline_intervals(gw, [s.id for s in sites], start, now)
    alarms_by_site: dict[str, list[Alarm]] = {}
    for a in gw.book.open_alarms():
        alarms_by_site.setdefault(a.site, []).append(a)
    rows = []
    for site in sites:
        devices = _device_snapshots(gw, site)
        known = [DeviceRef(site.id, d.device) for d in devices if d.state != "unknown"]
        avail = availability(known, offline, start, now)
        edge = gw.pipeline.edges.get(site.id)
        rows.append(summarize_site(site, devices, alarms_by_site.get(site.id, []), avail, edge))
    return rows


class _NoCacheFiles(StaticFiles):
    """Revalidated (ETag) on every load: after an upgrade a reload never mixes versions."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "no-cache"
        return response


def register_overview_routes(app: FastAPI) -> None:
    """`GET /api/overview`, `GET /api/overview/sites/{id}`, the `/bureau` page and its
    assets under `/bureau/assets`. Idempotent: a second call on one app does nothing."""
    if getattr(app.state, "overview_routes", False):
        return
    app.state.overview_routes = True

    @app.get("/api/overview", tags=["overview"])
    async def overview(
        gw: GatewayDep,
        who: ReaderDep,
        sort: Annotated[SortKey, Query(description="order of the sites")] = SortKey.SEVERITY,
        reverse: Annotated[bool, Query(description="the other way round")] = False,
        kind: Annotated[SiteKind | None, Query(description="only sites of this kind")] = None,
    ) -> dict[str, Any]:
        """Per site: devices by status, open alarms by severity, the oldest unacknowledged
        alarm, last contact, online rate over 24 h, a status; plus the totals."""
        now = gw.clock()
        sites = [
            s for s in gw.config.sites if who.may_read(s.id) and (kind is None or s.kind is kind)
        ]
        rows = sort_sites(await _rows(gw, sites, now), sort, reverse)
        clock = gw.clockface
        return {
            "county": gw.config.report.county,
            "gateway": gw.config.gateway.id,
            "generated_at": clock.iso(now),
            "window_s": int(WINDOW_S),
            "sort": sort.value,
            "reverse": reverse,
            "kind": kind.value if kind else None,
            "totals": totals_json(rows, now, clock),
            "sites": [row_json(r, now, clock) for r in rows],
        }

    @app.get("/api/overview/sites/{site_id}", tags=["overview"])
    async def overview_site(gw: GatewayDep, who: ReaderDep, site_id: str) -> dict[str, Any]:
        """One site: its figures, contacts, devices, open alarms and the alarms raised in
        the last 24 h (newest first; open ones raised earlier are in `open_alarms`)."""
        site = gw.inventory.sites.get(site_id)
        if site is None or not who.may_read(site_id):
            raise _api_error(404, "unknown site", site_id)
        now = gw.clock()
        (row,) = await _rows(gw, [site], now)
        open_alarms = sorted(
            (a for a in gw.book.open_alarms() if a.site == site_id),
            key=lambda a: (-a.severity.rank, a.acked, a.raised_at, a.id),
        )
        recent = {
            a.id: a
            for a in await gw.store.query(sites=[site_id], since=now - WINDOW_S, limit=RECENT_LIMIT)
        }
        for a in open_alarms:  # the book is ahead of the store by at most one commit
            if a.raised_at >= now - WINDOW_S:
                recent[a.id] = a
        devices = [
            v
            for dev in site.devices
            if (v := gw.device_view(DeviceRef(site_id, dev.id))) is not None
        ]
        clock = gw.clockface
        return {
            "generated_at": clock.iso(now),
            "window_s": int(WINDOW_S),
            "site": row_json(row, now, clock)
            | {
                "address": site.address,
                "contacts": [
                    {"name": c.name, "role": c.role.value, "phone": c.phone} for c in site.contacts
                ],
            },
            "devices": devices,
            "open_alarms": [gw.pipeline.alarm_view(a, timeline=False) for a in open_alarms],
            "recent_alarms": [
                gw.pipeline.alarm_view(a, timeline=False)
                for a in sorted(recent.values(), key=lambda a: (a.raised_at, a.id), reverse=True)
            ],
        }

    app.mount("/bureau/assets", _NoCacheFiles(directory=BUREAU_DIR), name="bureau")

    @app.get("/bureau", include_in_schema=False)
    async def bureau_page() -> HTMLResponse:
        # no-cache: after an upgrade the bureau gets the new page on its next reload
        html = (BUREAU_DIR / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"cache-control": "no-cache"})

    @app.get("/bureau/", include_in_schema=False)
    async def bureau_slash(request: Request) -> RedirectResponse:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/bureau{query}", status_code=307)
