"""`GET /api/devices[?site=]` and `GET /api/devices/{id}`: the devices the caller may read,
as the status views show them (status, last values); one device also with what the
commissioning page shows (its thresholds, the last raw payload, valves opened by hand), and
`GET /api/devices/{id}/trend?hours=` its last hours from the gateway's own rings
(`gateway.trend`) with the thresholds and the periods its alarms were active."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Query

from gateway.app.supervisor import Gateway
from gateway.http.auth import GatewayDep, PrincipalDep, readable_device
from gateway.http.errors import ApiError
from gateway.trend.feed import VALVE_OPENED_ON_SITE
from gateway.trend.ring import BUCKET_S
from rules.model import DeviceRef

log = logging.getLogger(__name__)
router = APIRouter()
HAND_OPENINGS_SHOWN = 20


@router.get("/api/devices")
async def devices(
    gw: GatewayDep, who: PrincipalDep, site: str | None = None
) -> list[dict[str, Any]]:
    if site is not None and (site not in gw.inventory.sites or not who.may_read(site)):
        raise ApiError(404, "unknown site", site)
    views = []
    for d in gw.inventory:
        if (site is None or d.ref.site == site) and who.may_read(d.ref.site):
            view = gw.device_view(d.ref)
            if view is not None:
                views.append(view)
    return views


@router.get("/api/devices/{device_id}")
async def device(
    gw: GatewayDep, who: PrincipalDep, device_id: str, site: str | None = None
) -> dict[str, Any]:
    installed = readable_device(gw, device_id, site, who)
    ref = installed.ref
    view = gw.device_view(ref)
    assert view is not None
    raw = gw.raw_payloads.last(ref)
    view["raw"] = (
        None
        if raw is None
        else {
            "at": gw.clockface.iso(raw.at),
            "channel": raw.channel,
            "text": raw.text,
            "size": raw.size,
            "truncated": raw.truncated,
        }
    )
    view["transport"] = installed.config.transport
    view["registers"] = _registers(gw, ref) if installed.config.transport == "modbus" else None
    view["thresholds"] = _thresholds(gw, ref)
    view["opened_on_site"] = (
        await _opened_on_site(gw, ref) if installed.type.value == "gas_valve" else []
    )
    return view


def _registers(gw: Gateway, ref: DeviceRef) -> dict[str, Any] | None:
    """A polled device's last answered poll as read, block by block (None before one)."""
    raw = gw.modbus.last_registers(ref)
    if raw is None:
        return None
    # The bus stamps it on the monotonic clock; shown on the wall clock as of now.
    at = gw.clock() - max(0.0, time.monotonic() - raw.at)
    return {
        "at": gw.clockface.iso(at),
        "blocks": [
            {"table": b.table.value, "start": b.start, "count": b.count, "values": list(v)}
            for b, v in raw.blocks
        ],
    }


@router.get("/api/devices/{device_id}/trend")
async def trend(
    gw: GatewayDep,
    who: PrincipalDep,
    device_id: str,
    site: str | None = None,
    hours: float = Query(24.0, gt=0, le=24),
) -> dict[str, Any]:
    installed = readable_device(gw, device_id, site, who)
    ref = installed.ref
    now = gw.clock()
    start = now - hours * 3600.0
    series = {
        q: [[p.at, p.low, p.high, p.last] for p in points]
        for q, points in sorted(gw.trends.series(ref, now, hours * 3600.0).items())
    }
    return {
        "id": ref.device,
        "site": ref.site,
        "from": start,
        "to": now,
        "zone_time": gw.clockface.iso(now),  # the gateway's zone, for the chart's time axis
        "bucket_s": BUCKET_S,
        "series": series,
        "thresholds": _thresholds(gw, ref),
        "alarms": await _alarm_periods(gw, ref, start, now),
    }


async def _opened_on_site(gw: Gateway, ref: DeviceRef) -> list[str]:
    """When the valve was opened by hand on site, newest first: the audit trail's rows
    (they outlive a restart) and those whose append is still on its way."""
    at = {o.at for o in gw.trends.openings_of(ref)}
    try:
        rows = await gw.audit.query(sites=[ref.site], action=VALVE_OPENED_ON_SITE, limit=200)
    except Exception:
        log.exception("audit trail unreadable for the hand openings of %s", ref)
        rows = []  # the page still shows those this run saw
    at.update(r.at for r in rows if r.target == ref.device)
    newest = sorted(at, reverse=True)[:HAND_OPENINGS_SHOWN]
    return [iso for t in newest if (iso := gw.clockface.iso(t)) is not None]


def _thresholds(gw: Gateway, ref: DeviceRef) -> list[dict[str, Any]]:
    rules = gw.engine.rules_of(ref)
    if rules is None:
        return []
    out: list[dict[str, Any]] = [
        {
            "alarm": t.alarm.value,
            "quantity": t.quantity,
            "levels": [
                {"name": lv.name, "at": lv.at, "severity": lv.severity.value} for lv in t.levels
            ],
            "clear_below": t.clear_below,
            "on_delay_s": t.on_delay_s,
            "off_delay_s": t.off_delay_s,
            "shutoff_level": t.shutoff_level,
        }
        for t in rules.thresholds
    ]
    if rules.co is not None:
        # CO alarms on dose (ppm held for a time), drawn as one line per curve point.
        out.append(
            {
                "alarm": "co",
                "quantity": "co_ppm",
                "levels": [
                    {"name": f"{ppm:g} ppm {seconds / 60:g} min", "at": ppm, "severity": "high"}
                    for ppm, seconds in rules.co.curve
                ],
                "clear_below": rules.co.clear_below_ppm,
                "on_delay_s": None,
                "off_delay_s": rules.co.off_delay_s,
                "shutoff_level": None,
            }
        )
    return out


async def _alarm_periods(
    gw: Gateway, ref: DeviceRef, start: float, now: float
) -> list[dict[str, Any]]:
    """Each alarm of the device active in [start, now]: raised until cleared (or closed, or
    still active); the book's open alarms laid over the store's rows (one commit ahead)."""
    periods: dict[str, dict[str, Any]] = {}
    rows = await gw.store.alarm_history([ref.site], start, now)
    alarms: list[Any] = [r for r in rows if r.device == ref.device]
    alarms += [a for a in gw.book.open_alarms() if a.site == ref.site and a.device == ref.device]
    for a in alarms:
        end = a.cleared_at if a.cleared_at is not None else a.closed_at
        periods[a.id] = {
            "id": a.id,
            "type": a.type if isinstance(a.type, str) else a.type.value,
            "severity": a.severity if isinstance(a.severity, str) else a.severity.value,
            "from": a.raised_at,
            "to": now if end is None else end,
            "active": end is None,
        }
    return sorted(periods.values(), key=lambda p: (p["from"], p["id"]))
