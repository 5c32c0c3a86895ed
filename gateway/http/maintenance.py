"""`PUT`/`DELETE /api/devices/{id}/maintenance` and `GET /api/maintenance`: a device's
maintenance window (no calls while someone works on it), kept by the notification worker."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from gateway.app.supervisor import Gateway
from gateway.http.auth import GatewayDep, PrincipalDep, actable_device
from gateway.http.errors import ApiError
from gateway.http.params import Body, parse_time
from gateway.http.trail import audited
from gateway.notify.maintenance import Maintenance

MAX_MAINTENANCE_S = 7 * 24 * 3600

router = APIRouter()


class MaintenanceBody(Body):
    by: str | None = Field(None, max_length=64)  # kept in the note: the caller is the actor
    until: str | None = None  # ISO 8601 with offset
    minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    note: str = Field("", max_length=2000)
    site: str | None = None


def _maintenance_json(gw: Gateway, m: Maintenance) -> dict[str, Any]:
    return {
        "site": m.site,
        "device": m.device,
        "until": gw.clockface.iso(m.until),
        "by": m.by,
        "note": m.note,
    }


@router.put("/api/devices/{device_id}/maintenance")
async def maintenance_on(
    gw: GatewayDep,
    who: PrincipalDep,
    device_id: str,
    body: MaintenanceBody,
    site: str | None = None,
) -> dict[str, Any]:
    async with audited(gw, who, "maintenance.set", device_id) as trail:
        installed = actable_device(gw, device_id, body.site or site, who)
        trail.site = installed.ref.site
        now = gw.clock()
        if (body.until is None) == (body.minutes is None):
            raise ApiError(422, "invalid request", "give exactly one of until or minutes")
        until = (
            now + body.minutes * 60 if body.minutes is not None else parse_time(body.until, "until")
        )
        assert until is not None
        if not now < until <= now + MAX_MAINTENANCE_S:
            raise ApiError(422, "invalid request", "until must be in the future and within 7 days")
        actor, note = who.acting(body.by, body.note)
        m = Maintenance(installed.ref.site, installed.ref.device, until, actor, note)
        trail.detail = {"actor": actor, "until": gw.clockface.iso(until), "note": note}
        await gw.maintenance.set(m)
    return _maintenance_json(gw, m)


@router.delete("/api/devices/{device_id}/maintenance")
async def maintenance_off(
    gw: GatewayDep, who: PrincipalDep, device_id: str, site: str | None = None
) -> dict[str, Any]:
    async with audited(gw, who, "maintenance.clear", device_id) as trail:
        installed = actable_device(gw, device_id, site, who)
        trail.site = installed.ref.site
        ended = gw.maintenance.active(installed.ref.site, installed.ref.device, gw.clock())
        cleared = await gw.maintenance.clear(installed.ref.site, installed.ref.device)
        # The window's row is deleted: the trail keeps whose window it was and its end.
        if ended is not None:
            trail.detail = {"set_by": ended.by, "until": gw.clockface.iso(ended.until)}
        trail.detail["cleared"] = cleared
    return {"site": installed.ref.site, "device": installed.ref.device, "cleared": cleared}


@router.get("/api/maintenance")
async def maintenance_list(gw: GatewayDep, who: PrincipalDep) -> list[dict[str, Any]]:
    now = gw.clock()
    return [
        _maintenance_json(gw, m)
        for m in gw.maintenance.windows.values()
        if who.may_read(m.site) and m.until > now
    ]
