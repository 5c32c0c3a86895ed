"""`POST /api/devices/{id}/commands` (202): a person's command to a device, e.g. reopening
a gas valve; `gateway.alarms.actions` decides whether it applies and whether the alarm allows it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from gateway.alarms.actions import CommandNotApplicable
from gateway.alarms.book import TransitionRefused
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
        try:
            sent = gw.actions.command(installed, body.cmd, actor)
        except CommandNotApplicable as exc:
            raise ApiError(400, str(exc)) from None
        except TransitionRefused as exc:
            raise ApiError(409, str(exc)) from None
        trail.detail["command_id"] = sent.id
    return {
        "id": sent.id,
        "site": sent.ref.site,
        "device": sent.ref.device,
        "cmd": sent.cmd.value,
        "requested_by": sent.requested_by,
        "sent_at": gw.clockface.iso(sent.sent_at),
    }
