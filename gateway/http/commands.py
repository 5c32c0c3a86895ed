"""`POST /api/devices/{id}/commands` (202): a person's command to a device, e.g. reopening
a gas valve; `gateway.alarms.actions` decides whether it applies and whether the alarm allows it.

Reopening gas is for a person on site (GB 50028 §10.8.4): `open_valve` is refused (403) unless
the site allows remote reopening (`sites[].remote_reopen`) or the caller's address (after
`http.trusted_proxies`) is in one of the site's `local_networks`, its own console's LAN."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from gateway.alarms.actions import CommandNotApplicable
from gateway.alarms.book import TransitionRefused
from gateway.config.schema import SiteConfig
from gateway.http.auth import GatewayDep, PrincipalDep, actable_device
from gateway.http.errors import ApiError
from gateway.http.params import Body
from gateway.http.trail import audited
from rules.model import CommandKind

router = APIRouter()


class CommandBody(Body):
    by: str | None = Field(None, max_length=64)  # only the local operator's name counts
    cmd: CommandKind
    site: str | None = None


@router.post("/api/devices/{device_id}/commands", status_code=202)
async def command(
    gw: GatewayDep,
    who: PrincipalDep,
    device_id: str,
    body: CommandBody,
    site: str | None = None,
) -> dict[str, Any]:
    async with audited(gw, who, f"command.{body.cmd.value}", device_id) as trail:
        installed = actable_device(gw, device_id, body.site or site, who, "command devices of")
        trail.site = installed.ref.site
        actor = who.acting(body.by, "")[0]
        trail.detail = {"actor": actor}
        if body.cmd is CommandKind.OPEN_VALVE and not may_reopen_from(
            gw.inventory.sites[installed.ref.site], who.source
        ):
            raise ApiError(
                403,
                "reopening gas is done on site",
                "open the valve by hand on site, or from the site's own console on its local "
                "network (sites[].local_networks); remote reopening is off for this site",
            )
        try:
            sent = gw.actions.command(installed, body.cmd, actor)
        except CommandNotApplicable as exc:
            raise ApiError(400, str(exc)) from None
        except TransitionRefused as exc:
            raise ApiError(409, str(exc)) from None
        trail.detail["command_id"] = sent.id
        if body.cmd is CommandKind.OPEN_VALVE:
            gw.trends.commanded_open(installed.ref, sent.sent_at)  # not a hand opening
    return {
        "id": sent.id,
        "site": sent.ref.site,
        "device": sent.ref.device,
        "cmd": sent.cmd.value,
        "requested_by": sent.requested_by,
        "sent_at": gw.clockface.iso(sent.sent_at),
    }


def may_reopen_from(site: SiteConfig, source: str) -> bool:
    """Whether `open_valve` may come from the client address `source` for `site`."""
    if site.remote_reopen:
        return True
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return False  # no address (or a name): never on site
    return any(address in network for network in site.local_networks)
