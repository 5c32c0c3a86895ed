"""`GET /api/sites`: the sites the caller may read, with their contacts and open alarms.
Owns a site's contacts JSON, which the bureau's site drill-down shows too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.config.schema import SiteConfig
from gateway.http.auth import GatewayDep, PrincipalDep

router = APIRouter()


def contacts_json(site: SiteConfig) -> list[dict[str, Any]]:
    return [{"name": c.name, "role": c.role.value, "phone": c.phone} for c in site.contacts]


@router.get("/api/sites")
async def sites(gw: GatewayDep, who: PrincipalDep) -> list[dict[str, Any]]:
    open_by_site: dict[str, int] = {}
    for a in gw.book.open_alarms():
        open_by_site[a.site] = open_by_site.get(a.site, 0) + 1
    out = []
    for site in gw.config.sites:
        if not who.may_read(site.id):
            continue
        out.append(
            {
                "id": site.id,
                "name": site.name,
                "kind": site.kind.value,
                "address": site.address,
                "contacts": contacts_json(site),
                "devices": len(site.devices),
                "open_alarms": open_by_site.get(site.id, 0),
            }
        )
    return out
