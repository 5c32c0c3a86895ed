"""`GET /api/alarms`, `GET /api/alarms/{id}`, `POST /api/alarms/{id}/ack` and `/close`.

Open alarms come from the alarm book, closed ones from the store; the transitions are the
book's, which refuses what the alarm's state forbids (409).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from gateway.alarms.book import AlarmNotFound, AlarmState, Disposition, TransitionRefused
from gateway.app.supervisor import Gateway
from gateway.http.auth import GatewayDep, Principal, PrincipalDep, require_authority
from gateway.http.errors import ApiError
from gateway.http.incidents import open_for_closed_alarm, open_for_confirmed_alarm
from gateway.http.params import Body, parse_time, split_list
from gateway.http.trail import Audited, audited

MAX_LIMIT = 1000

router = APIRouter()


class AckBody(Body):
    # The actor is the caller; a typed name is kept only in the note (older clients send it).
    by: str | None = Field(None, max_length=64)
    note: str = Field("", max_length=2000)
    # The person confirms it is a real emergency (seed 003): a critical alarm of a hazard
    # opens its incident now, and the report clocks run from this acknowledgement.
    real: bool = False


class CloseBody(Body):
    by: str | None = Field(None, max_length=64)
    disposition: Disposition
    note: str = Field("", max_length=2000)


@router.get("/api/alarms")
async def alarms(
    gw: GatewayDep,
    who: PrincipalDep,
    state: str | None = Query(None, description="comma-separated: active,cleared,closed"),
    site: str | None = None,
    type: str | None = Query(None, description="comma-separated alarm types"),
    severity: str | None = None,
    device: str | None = None,
    since: str | None = Query(None, description="raised at or after, ISO 8601 with offset"),
    until: str | None = None,
    limit: int = Query(200, ge=1, le=MAX_LIMIT),
) -> list[dict[str, Any]]:
    states = split_list(state)
    for s in states:
        if s not in {x.value for x in AlarmState}:
            raise ApiError(422, "invalid request", f"state: unknown state {s!r}")
    types = split_list(type)
    severities = split_list(severity)
    t0, t1 = parse_time(since, "since"), parse_time(until, "until")
    sites = [site] if site else None
    if who.sites is not None:
        sites = [s for s in (sites or sorted(who.sites)) if s in who.sites]
    found = []
    for a in gw.book.open_alarms():
        if (
            (not states or a.state.value in states)
            and (sites is None or a.site in sites)
            and (not types or a.type.value in types)
            and (device is None or a.device == device)
            and (t0 is None or a.raised_at >= t0)
            and (t1 is None or a.raised_at < t1)
        ):
            found.append(a)
    if not states or "closed" in states:
        found += await gw.store.query(
            states=["closed"],
            sites=sites,
            types=types,
            device=device,
            since=t0,
            until=t1,
            limit=limit,
        )
    if severities:
        found = [a for a in found if a.severity.value in severities]
    found.sort(key=lambda a: a.raised_at, reverse=True)
    return [gw.alarm_view(a, timeline=False) for a in found[:limit]]


@router.get("/api/alarms/{alarm_id}")
async def alarm(gw: GatewayDep, who: PrincipalDep, alarm_id: str) -> dict[str, Any]:
    a = gw.book.get(alarm_id) or await gw.store.get(alarm_id)
    if a is None or not who.may_read(a.site):
        raise ApiError(404, "unknown alarm", alarm_id)
    return gw.alarm_view(a)


async def _act(gw: Gateway, who: Principal, alarm_id: str, note: Audited) -> None:
    # Another site's alarm is as unknown as a missing one, as when read (no 403 naming it).
    a = gw.book.get(alarm_id)
    if a is None:
        stored = await gw.store.get(alarm_id)
        if stored is None or not who.may_read(stored.site):
            raise ApiError(404, "unknown alarm", alarm_id)
        note.site = stored.site
        raise ApiError(409, "alarm is already closed", {"closed_by": stored.closed_by})
    if not who.may_read(a.site):
        raise ApiError(404, "unknown alarm", alarm_id)
    note.site = a.site
    if not who.may_act_on(a.site, a.type.value):
        raise ApiError(403, "not allowed", f"{who.login} may not act on site {a.site}")
    if not gw.authority.acts_on(a):
        require_authority(gw, a.site)


@router.post("/api/alarms/{alarm_id}/ack")
async def ack(gw: GatewayDep, who: PrincipalDep, alarm_id: str, body: AckBody) -> dict[str, Any]:
    async with audited(gw, who, "alarm.ack", alarm_id) as trail:
        await _act(gw, who, alarm_id, trail)
        actor, note = who.acting(body.by, body.note)
        trail.detail = {"actor": actor, "note": note, "real": body.real}
        try:
            a = await gw.actions.ack(alarm_id, actor, note)
        except TransitionRefused as exc:
            raise ApiError(409, str(exc)) from None
        except AlarmNotFound:
            raise ApiError(404, "unknown alarm", alarm_id) from None
    view = gw.alarm_view(a)
    if body.real:
        at = a.acked_at if a.acked_at is not None else gw.clock()
        view["incident"] = await open_for_confirmed_alarm(gw, who, a, "real", at, actor)
    return view


@router.post("/api/alarms/{alarm_id}/close")
async def close(
    gw: GatewayDep, who: PrincipalDep, alarm_id: str, body: CloseBody
) -> dict[str, Any]:
    async with audited(gw, who, "alarm.close", alarm_id) as trail:
        await _act(gw, who, alarm_id, trail)
        actor, note = who.acting(body.by, body.note)
        trail.detail = {"actor": actor, "disposition": body.disposition.value, "note": note}
        try:
            a = await gw.actions.close(alarm_id, actor, body.disposition, note)
        except TransitionRefused as exc:
            raise ApiError(409, str(exc)) from None
        except AlarmNotFound:
            raise ApiError(404, "unknown alarm", alarm_id) from None
    await open_for_closed_alarm(gw, who, a)  # a critical alarm confirmed real (seed 003)
    return gw.alarm_view(a)
