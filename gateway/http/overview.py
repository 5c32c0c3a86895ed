"""The county bureau's overview over HTTP (DESIGN section 8): `GET /api/overview`,
`GET /api/overview/sites/{id}`, the `/bureau` page and its assets under `/bureau/assets`.

Thin: it reads the gateway once per request with one `now` (`gateway.overview.gather`) and
writes the figures as `gateway.overview.queries` computes and words them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, RedirectResponse

from gateway.app.supervisor import Gateway
from gateway.config.schema import SiteKind
from gateway.duty.model import parse_hhmm
from gateway.http.auth import GatewayDep, PrincipalDep
from gateway.http.errors import ApiError
from gateway.http.incidents import incident_json
from gateway.http.sites import contacts_json
from gateway.http.static import BUREAU_DIR, NoCacheFiles, page
from gateway.incidents.model import Deadlines
from gateway.overview.gather import LoopSources, OverviewSources, read_loop, site_rows
from gateway.overview.loop import LoopFigures, loop_figures, site_loop_json, totals_loop_json
from gateway.overview.queries import (
    RECENT_LIMIT,
    WINDOW_S,
    SortKey,
    row_json,
    sort_sites,
    totals_json,
)
from rules.model import DeviceRef

router = APIRouter()


def register_overview_routes(app: FastAPI) -> None:
    """The routes and the page's assets. Idempotent: a second call on one app does nothing."""
    if getattr(app.state, "overview_routes", False):
        return
    app.state.overview_routes = True
    app.include_router(router)
    app.mount("/bureau/assets", NoCacheFiles(directory=BUREAU_DIR), name="bureau")


@router.get("/api/overview", tags=["overview"])
async def overview(
    gw: GatewayDep,
    who: PrincipalDep,
    sort: Annotated[SortKey, Query(description="order of the sites")] = SortKey.SEVERITY,
    reverse: Annotated[bool, Query(description="the other way round")] = False,
    kind: Annotated[SiteKind | None, Query(description="only sites of this kind")] = None,
) -> dict[str, Any]:
    """Per site: devices by status, open alarms by severity, the oldest unacknowledged
    alarm, last contact, online rate over 24 h, a status, and its closed loop (open
    incidents and their late reports, overdue hazards, today's self-report); plus the
    totals."""
    now = gw.clock()
    sites = [s for s in gw.config.sites if who.may_read(s.id) and (kind is None or s.kind is kind)]
    found, loop = await asyncio.gather(
        site_rows(_sources(gw), sites, now), _loop(gw, [s.id for s in sites], now)
    )
    rows = sort_sites(found, sort, reverse)
    clock = gw.clockface
    return {
        "county": gw.config.report.county,
        "gateway": gw.config.gateway.id,
        "generated_at": clock.iso(now),
        "window_s": int(WINDOW_S),
        "sort": sort.value,
        "reverse": reverse,
        "kind": kind.value if kind else None,
        "totals": totals_json(rows, now, clock)
        | {"closed_loop": totals_loop_json(loop, [r.id for r in rows], clock)},
        "sites": [
            row_json(r, now, clock) | {"closed_loop": site_loop_json(loop, r.id, clock)}
            for r in rows
        ],
    }


@router.get("/api/overview/sites/{site_id}", tags=["overview"])
async def overview_site(gw: GatewayDep, who: PrincipalDep, site_id: str) -> dict[str, Any]:
    """One site: its figures, contacts, devices, open alarms and the alarms raised in
    the last 24 h (newest first; open ones raised earlier are in `open_alarms`); its closed
    loop, with its open incidents (as `GET /api/incidents/{id}` has them, clocks included,
    oldest first) and the ids of its overdue hazards."""
    site = gw.inventory.sites.get(site_id)
    if site is None or not who.may_read(site_id):
        raise ApiError(404, "unknown site", site_id)
    now = gw.clock()
    (row,), loop = await asyncio.gather(
        site_rows(_sources(gw), [site], now), _loop(gw, [site_id], now)
    )
    mine = loop.sites[site_id]
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
        v for dev in site.devices if (v := gw.device_view(DeviceRef(site_id, dev.id))) is not None
    ]
    clock = gw.clockface
    return {
        "generated_at": clock.iso(now),
        "window_s": int(WINDOW_S),
        "site": row_json(row, now, clock)
        | {
            "address": site.address,
            "contacts": contacts_json(site),
            "closed_loop": site_loop_json(loop, site_id, clock),
        },
        "open_incidents": (
            None
            if mine.incidents is None
            else [incident_json(gw, i.incident, now) for i in mine.incidents]
        ),
        "overdue_hazards": (None if mine.overdue_hazards is None else list(mine.overdue_hazards)),
        "devices": devices,
        "open_alarms": [gw.alarm_view(a, timeline=False) for a in open_alarms],
        "recent_alarms": [
            gw.alarm_view(a, timeline=False)
            for a in sorted(recent.values(), key=lambda a: (a.raised_at, a.id), reverse=True)
        ],
    }


@router.get("/bureau", include_in_schema=False)
async def bureau_page() -> FileResponse:
    return page(BUREAU_DIR / "index.html")


@router.get("/bureau/", include_in_schema=False)
async def bureau_slash(request: Request) -> RedirectResponse:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/bureau{query}", status_code=307)


def _sources(gw: Gateway) -> OverviewSources:
    return OverviewSources(gw.store, gw.book, gw.engine, gw.central.edges)


async def _loop(gw: Gateway, sites: list[str], now: float) -> LoopFigures:
    """The closed loop of `sites` at `now`, "today" being the gateway's zone's."""
    zone_now = datetime.fromtimestamp(now, gw.clockface.zone)
    src = LoopSources(gw.incidents, gw.hazards, gw.duty)
    reads = await read_loop(src, sites, now, zone_now.date())
    section, checks = gw.config.incidents, gw.config.daily_checks
    return loop_figures(
        reads,
        sites,
        now,
        Deadlines.from_minutes(section.phone_report_minutes, section.written_report_minutes),
        zone_now,
        parse_hhmm(checks.due),
        parse_hhmm(checks.remind_at),
    )
