"""The hazard ledger and the rectification notices (DESIGN section 11, `gateway.hazards`):
`GET/POST /api/hazards` (`?format=xlsx`: 《重大事故隐患清单》), `GET /api/hazards/suggestions`
(what the gateway's own alarms suggest; accepted by a `POST /api/hazards` with its `source`
and `alarm_id`), `GET /api/hazards/{id}`,
`PATCH /api/hazards/{id}` (correcting its fields; the level is the bureau's),
`POST /api/hazards/{id}/transition`, `GET/POST /api/notices`, `GET /api/notices/{id}`
(`?format=html`: the printable notice), `POST /api/notices/{id}/receipt`.

Institutions (and admins) enter hazards and rectify them on their own sites; the bureau enters
hazards, verifies them on site, and issues notices for the sites it reads; the institution
acknowledges a notice's receipt. A hazard or notice of a site the caller may not read is
unknown (404), as everywhere in the API. Every change is on the audit trail.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Final, Self, TypeVar

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field, model_validator

from gateway.app.supervisor import Gateway
from gateway.hazards.model import (
    LEVEL_LABELS,
    STATUS_LABELS,
    EditRefused,
    Hazard,
    HazardEdit,
    HazardEvent,
    HazardLevel,
    HazardSource,
    HazardStatus,
    Notice,
    Refusal,
    TransitionRefused,
    overdue,
)
from gateway.hazards.store import (
    AlreadyReceived,
    HazardsOfAnotherSite,
    UnknownHazard,
)
from gateway.hazards.suggest import Suggestion, suggestions
from gateway.http.auth import GatewayDep, Principal, PrincipalDep
from gateway.http.errors import ApiError, ask_database
from gateway.http.hazard_documents import ledger_xlsx, notice_html
from gateway.http.params import Body, parse_time
from gateway.http.trail import audited
from gateway.people.model import BUREAU_ROLES, SITE_ROLES
from gateway.report.model import XLSX_MIME

log = logging.getLogger(__name__)
router = APIRouter()
# SQLite's integer ids: a larger one in a path or body is a 422, not an overflow in the store.
ROW_ID_MAX: Final = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]
T = TypeVar("T")

_TEXT: Final = 2000
# Closed alarms read for suggestions: a month of a county's, far more than false alarms need.
_CLOSED_LIMIT: Final = 20_000


class NewHazard(Body):
    site: str = Field(min_length=1, max_length=64)
    location: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=_TEXT)
    level: HazardLevel
    source: HazardSource = HazardSource.INSPECTION
    alarm_id: str | None = Field(None, max_length=200)
    responsible: str = Field(min_length=1, max_length=64)
    measure: str = Field(min_length=1, max_length=_TEXT)
    deadline: str | None = Field(None, description="ISO 8601 with offset")


class HazardChanges(Body):
    """PATCH: the fields to correct, at least one; a deadline is moved, not removed."""

    location: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, min_length=1, max_length=_TEXT)
    responsible: str | None = Field(None, min_length=1, max_length=64)
    measure: str | None = Field(None, min_length=1, max_length=_TEXT)
    deadline: str | None = Field(None, description="ISO 8601 with offset")
    level: HazardLevel | None = Field(None, description="the bureau's alone")

    @model_validator(mode="after")
    def _something(self) -> Self:
        if all(v is None for v in self.__dict__.values()):
            raise ValueError("give at least one field to change")
        return self


class TransitionBody(Body):
    to: HazardStatus
    note: str = Field("", max_length=_TEXT)


class NewNotice(Body):
    site: str = Field(min_length=1, max_length=64)
    hazard_ids: list[Annotated[int, Field(ge=1, le=ROW_ID_MAX)]] = Field(
        min_length=1, max_length=500
    )
    person_in_charge: str = Field(min_length=1, max_length=64)
    deadline: str | None = Field(None, description="ISO 8601 with offset")
    requirements: str = Field(min_length=1, max_length=_TEXT)


# ----------------------------------------------------------------------------- helpers
async def _ledger(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await ask_database(fn, *args, unavailable="the hazard ledger is unavailable", **kwargs)


def _readable_site(gw: Gateway, who: Principal, site: str, *, in_url: bool = True) -> None:
    """404 for a site the caller may not read; named in the error only when the address
    names it (no error names a site the caller may not read)."""
    if site not in gw.inventory.sites or not who.may_read(site):
        raise ApiError(404, "unknown site", site if in_url else "site")


def _may_enter(who: Principal, site: str) -> bool:
    """The institution (and admins) on its own sites; the bureau on the sites it reads."""
    return who.may_act(site) or (who.role in BUREAU_ROLES and who.may_read(site))


def _readable_sites(gw: Gateway, who: Principal) -> list[str] | None:
    return None if who.sites is None else [s for s in gw.inventory.sites if who.may_read(s)]


async def _hazard(gw: Gateway, who: Principal, hazard_id: int) -> Hazard:
    h = await _ledger(gw.hazards.get, hazard_id)
    if h is None or not who.may_read(h.site):
        raise ApiError(404, "unknown hazard", str(hazard_id))
    return h


async def _notice(gw: Gateway, who: Principal, notice_id: int) -> Notice:
    n = await _ledger(gw.hazards.notice, notice_id)
    if n is None or not who.may_read(n.site):
        raise ApiError(404, "unknown notice", str(notice_id))
    return n


def _deadline(raw: str | None) -> float | None:
    return parse_time(raw, "deadline")


def _site_name(gw: Gateway, site: str) -> str:
    found = gw.inventory.sites.get(site)
    return found.name if found is not None else site


def hazard_json(gw: Gateway, h: Hazard, now: float) -> dict[str, Any]:
    iso = gw.clockface.iso
    return {
        "id": h.id,
        "site": h.site,
        "site_name": _site_name(gw, h.site),
        "location": h.location,
        "description": h.description,
        "level": h.level.value,
        "level_label": LEVEL_LABELS[h.level],
        "source": h.source.value,
        "alarm_id": h.alarm_id,
        "found_at": iso(h.found_at),
        "found_by": h.found_by,
        "responsible": h.responsible,
        "measure": h.measure,
        "deadline": iso(h.deadline),
        "status": h.status.value,
        "status_label": STATUS_LABELS[h.status],
        "overdue": overdue(h, now),
        "closed_at": iso(h.closed_at),
        "verified_by": h.verified_by,
        "verified_at": iso(h.verified_at),
        "verification_note": h.verification_note,
    }


def _event_json(gw: Gateway, e: HazardEvent) -> dict[str, Any]:
    return {
        "at": gw.clockface.iso(e.at),
        "action": e.action.value,
        "actor": e.actor,
        "from": e.from_status.value if e.from_status is not None else None,
        "to": e.to_status.value,
        "note": e.note,
    }


def notice_json(gw: Gateway, n: Notice) -> dict[str, Any]:
    iso = gw.clockface.iso
    return {
        "id": n.id,
        "number": n.number,
        "site": n.site,
        "site_name": _site_name(gw, n.site),
        "hazard_ids": list(n.hazard_ids),
        "issued_at": iso(n.issued_at),
        "issued_by": n.issued_by,
        "person_in_charge": n.person_in_charge,
        "deadline": iso(n.deadline),
        "requirements": n.requirements,
        "received_at": iso(n.received_at),
        "received_by": n.received_by,
        "closed_at": iso(n.closed_at),
        "state": n.state.value,
    }


# ------------------------------------------------------------------------------ hazards
@router.get("/api/hazards", response_model=None)
async def hazards(
    gw: GatewayDep,
    who: PrincipalDep,
    site: str | None = None,
    status: HazardStatus | None = None,
    level: HazardLevel | None = None,
    overdue_only: bool = Query(False, alias="overdue", description="true: past the deadline"),
    fmt: str = Query("json", alias="format", description="json or xlsx"),
) -> Response:
    if fmt not in ("json", "xlsx"):
        raise ApiError(422, "invalid request", "format: one of json, xlsx")
    if site is not None:
        _readable_site(gw, who, site)
    sites = [site] if site is not None else _readable_sites(gw, who)
    now = gw.clock()
    found = await _ledger(gw.hazards.hazards, sites, status, level)
    if overdue_only:
        found = [h for h in found if overdue(h, now)]
    if fmt == "xlsx":
        names = {s: c.name for s, c in gw.inventory.sites.items()}
        return Response(
            ledger_xlsx(found, names, gw.clockface.zone, now),
            media_type=XLSX_MIME,
            headers={"content-disposition": 'attachment; filename="hazards.xlsx"'},
        )
    return JSONResponse({"hazards": [hazard_json(gw, h, now) for h in found]})


@router.post("/api/hazards", status_code=201)
async def add_hazard(gw: GatewayDep, who: PrincipalDep, body: NewHazard) -> dict[str, Any]:
    async with audited(gw, who, "hazard.add", body.site) as trail:
        _readable_site(gw, who, body.site, in_url=False)
        trail.site = body.site
        if not _may_enter(who, body.site):
            raise ApiError(403, "not allowed", f"{who.login} may not enter hazards of {body.site}")
        now = gw.clock()
        new = Hazard(
            0, body.site, body.location, body.description, body.level, body.source, now,
            who.actor, body.responsible, body.measure, _deadline(body.deadline),
            alarm_id=body.alarm_id,
        )  # fmt: skip
        added = await _ledger(gw.hazards.add, new)
        trail.detail = {"id": added.id, "level": added.level.value, "source": added.source.value}
    return hazard_json(gw, added, now)


def _suggestion_json(gw: Gateway, s: Suggestion) -> dict[str, Any]:
    return {
        "site": s.site,
        "site_name": _site_name(gw, s.site),
        "device": s.device,
        "location": s.location,
        "source": s.source.value,
        "alarm_id": s.alarm_id,
        "raised_at": gw.clockface.iso(s.raised_at),
        "reason": s.reason,
        "level": s.level.value,
        "level_label": LEVEL_LABELS[s.level],
        "description": s.description,
    }


# Before `/api/hazards/{hazard_id}`, which would take the word for an id.
@router.get("/api/hazards/suggestions")
async def hazard_suggestions(
    gw: GatewayDep, who: PrincipalDep, site: str | None = None
) -> dict[str, Any]:
    """Computed on request from the open alarms, the closed ones of the window and the
    ledger: nothing is stored until a person enters the hazard."""
    if site is not None:
        _readable_site(gw, who, site)
    sites = [site] if site is not None else _readable_sites(gw, who)
    now = gw.clock()
    settings = gw.config.hazards
    opened = [a for a in gw.book.open_alarms() if sites is None or a.site in sites]
    try:
        closed = await gw.store.query(
            states=["closed"], sites=sites, since=now - settings.false_alarm_window,
            limit=_CLOSED_LIMIT,
        )  # fmt: skip
    except (sqlite3.Error, RuntimeError):
        log.exception("alarm store unavailable for hazard suggestions")
        raise ApiError(503, "the alarm store is unavailable", "see /api/health") from None
    existing = await _ledger(gw.hazards.hazards, sites, None, None)
    locations = {(r.site, r.device): d.config.location for r, d in gw.inventory.devices.items()}
    found = suggestions(opened, closed, existing, now, settings, locations)
    return {"suggestions": [_suggestion_json(gw, s) for s in found]}


@router.get("/api/hazards/{hazard_id}")
async def hazard(gw: GatewayDep, who: PrincipalDep, hazard_id: RowId) -> dict[str, Any]:
    h = await _hazard(gw, who, hazard_id)
    events = await _ledger(gw.hazards.events, hazard_id)
    return hazard_json(gw, h, gw.clock()) | {"timeline": [_event_json(gw, e) for e in events]}


@router.patch("/api/hazards/{hazard_id}")
async def edit_hazard(
    gw: GatewayDep, who: PrincipalDep, hazard_id: RowId, body: HazardChanges
) -> dict[str, Any]:
    async with audited(gw, who, "hazard.edit", str(hazard_id)) as trail:
        h = await _hazard(gw, who, hazard_id)
        trail.site = h.site
        trail.detail = {"fields": ",".join(k for k, v in body.__dict__.items() if v is not None)}
        if not _may_enter(who, h.site):
            raise ApiError(403, "not allowed", f"{who.login} may not act on site {h.site}")
        changes = HazardEdit(
            body.location, body.description, body.responsible, body.measure,
            _deadline(body.deadline), body.level,
        )  # fmt: skip
        now = gw.clock()
        try:
            changed, event = await _ledger(
                gw.hazards.edit, hazard_id, changes, who.role in BUREAU_ROLES,
                actor=who.actor, now=now, time_text=_time_text(gw),
            )  # fmt: skip
        except EditRefused as exc:
            status = 409 if exc.reason is Refusal.CLOSED else 403
            raise ApiError(status, "edit refused", exc.detail) from None
        except UnknownHazard:
            raise ApiError(404, "unknown hazard", str(hazard_id)) from None
        trail.detail["changes"] = event.note if event is not None else None
    return hazard_json(gw, changed, now)


def _time_text(gw: Gateway) -> Callable[[float | None], str]:
    """A deadline as the timeline's note writes it: the gateway's local minute."""

    def text(ts: float | None) -> str:
        if ts is None:
            return "未设"
        return datetime.fromtimestamp(ts, gw.clockface.zone).strftime("%Y-%m-%d %H:%M")

    return text


@router.post("/api/hazards/{hazard_id}/transition")
async def transition(
    gw: GatewayDep, who: PrincipalDep, hazard_id: RowId, body: TransitionBody
) -> dict[str, Any]:
    async with audited(gw, who, "hazard.transition", str(hazard_id)) as trail:
        h = await _hazard(gw, who, hazard_id)
        trail.site = h.site
        trail.detail = {"from": h.status.value, "to": body.to.value, "note": body.note or None}
        if not _may_enter(who, h.site):
            raise ApiError(403, "not allowed", f"{who.login} may not act on site {h.site}")
        try:
            changed = await _ledger(
                gw.hazards.transition, hazard_id, body.to, who.role in BUREAU_ROLES,
                actor=who.actor, now=gw.clock(), note=body.note or None,
            )  # fmt: skip
        except TransitionRefused as exc:
            status = 409 if exc.reason is Refusal.NOT_IN_LOOP else 403
            raise ApiError(status, "transition refused", exc.detail) from None
        except UnknownHazard:
            raise ApiError(404, "unknown hazard", str(hazard_id)) from None
    return hazard_json(gw, changed, gw.clock())


# ------------------------------------------------------------------------------ notices
@router.get("/api/notices")
async def notices(gw: GatewayDep, who: PrincipalDep, site: str | None = None) -> dict[str, Any]:
    if site is not None:
        _readable_site(gw, who, site)
    sites = [site] if site is not None else _readable_sites(gw, who)
    found = await _ledger(gw.hazards.notices, sites)
    return {"notices": [notice_json(gw, n) for n in found]}


@router.post("/api/notices", status_code=201)
async def issue_notice(gw: GatewayDep, who: PrincipalDep, body: NewNotice) -> dict[str, Any]:
    async with audited(gw, who, "notice.issue", body.site) as trail:
        _readable_site(gw, who, body.site, in_url=False)
        trail.site = body.site
        if who.role not in BUREAU_ROLES:
            raise ApiError(
                403, "not allowed", f"{who.login} ({who.role.value}) may not issue notices"
            )
        now = gw.clock()
        try:
            issued = await _ledger(
                gw.hazards.issue, site=body.site, hazard_ids=body.hazard_ids,
                year=datetime.fromtimestamp(now, gw.clockface.zone).year, issued_at=now,
                issued_by=who.actor, person_in_charge=body.person_in_charge,
                deadline=_deadline(body.deadline), requirements=body.requirements,
            )  # fmt: skip
        except HazardsOfAnotherSite as exc:
            # The same answer for another site's hazard and a missing one: nothing is told.
            raise ApiError(
                422, "invalid request", f"hazard_ids: not hazards of {body.site}: {exc.ids}"
            ) from None
        trail.detail = {"id": issued.id, "number": issued.number,
                        "hazards": ",".join(map(str, issued.hazard_ids))}  # fmt: skip
    return notice_json(gw, issued)


@router.get("/api/notices/{notice_id}", response_model=None)
async def notice(
    gw: GatewayDep,
    who: PrincipalDep,
    notice_id: RowId,
    fmt: str = Query("json", alias="format", description="json or html"),
) -> Response:
    if fmt not in ("json", "html"):
        raise ApiError(422, "invalid request", "format: one of json, html")
    n = await _notice(gw, who, notice_id)
    found = [h for h in [await _ledger(gw.hazards.get, i) for i in n.hazard_ids] if h]
    if fmt == "html":
        return HTMLResponse(notice_html(n, found, _site_name(gw, n.site), gw.clockface.zone))
    now = gw.clock()
    return JSONResponse(notice_json(gw, n) | {"hazards": [hazard_json(gw, h, now) for h in found]})


@router.post("/api/notices/{notice_id}/receipt")
async def receipt(gw: GatewayDep, who: PrincipalDep, notice_id: RowId) -> dict[str, Any]:
    async with audited(gw, who, "notice.receipt", str(notice_id)) as trail:
        n = await _notice(gw, who, notice_id)
        trail.site = n.site
        if who.role not in SITE_ROLES or not who.may_act(n.site):
            raise ApiError(403, "not allowed", f"{who.login} may not sign for site {n.site}")
        try:
            received = await _ledger(gw.hazards.receive, notice_id, who.actor, gw.clock())
        except AlreadyReceived as exc:
            raise ApiError(409, "already received", exc.notice.received_by) from None
        trail.detail = {"number": received.number}
    return notice_json(gw, received)
