"""`GET /api/devices[?site=]` and `GET /api/devices/{id}`: the devices the caller may read,
as the status views show them (status, last values)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.http.auth import GatewayDep, PrincipalDep, readable_device
from gateway.http.errors import ApiError

router = APIRouter()


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
    view = gw.device_view(installed.ref)
    assert view is not None
    return view
