"""The daily self-report and the duty roster (`gateway.duty`): `PUT
/api/sites/{id}/daily-checks/{date}`, `GET /api/daily-checks?date=`, `GET`/`PUT /api/duty`,
`POST /api/duty/handover`.

The board carries what the page needs to draw the form: the configured checklist, and per
site the day's hazard changes (found, moved, closed or corrected that day, from the hazard
ledger's timelines) filled in automatically; `hazard_changes` is null when the ledger cannot
be read (the self-report goes on without it). An item answered as a problem needs a note.

An institution's people submit their own sites' reports and keep their own sites' roster;
the bureau keeps the bureau's roster and reads every readable site's board; an admin keeps
every roster. Days are the gateway's zone's. A site the caller may not read is unknown (404).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal, Self, TypeVar

from fastapi import APIRouter
from pydantic import Field, model_validator

from gateway.app.supervisor import Gateway
from gateway.duty.model import (
    BUREAU_SCOPE,
    Board,
    CheckAnswer,
    CheckResult,
    DailyCheck,
    DutyRole,
    Handover,
    InvalidCheck,
    InvalidShift,
    board,
    check_shift,
    checked,
    parse_hhmm,
)
from gateway.duty.store import CheckClosed
from gateway.hazards.model import LEVEL_LABELS, STATUS_LABELS, Hazard, HazardEvent
from gateway.http.auth import GatewayDep, Principal, PrincipalDep, ask_people
from gateway.http.errors import ApiError, ask_database
from gateway.http.params import Body
from gateway.http.trail import audited
from gateway.people.model import BUREAU_ROLES, SITE_ROLES, Person, Role

router = APIRouter()
T = TypeVar("T")
LATE_REPORT_DAYS = timedelta(days=1)
SHIFT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"  # "day", "night", "24h"


class CheckAnswerBody(Body):
    item: str = Field(max_length=64)
    result: Literal["ok", "problem", "not_applicable"]
    note: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _problem_said(self) -> Self:
        # A problem without words tells the bureau nothing it can follow up.
        if self.result == "problem" and not self.note.strip():
            raise ValueError(f"item {self.item!r}: a problem needs a note saying what it is")
        return self


class DailyCheckBody(Body):
    items: list[CheckAnswerBody] = Field(max_length=100)


class ShiftPerson(Body):
    login: str = Field(max_length=64)
    role: Literal["on_duty", "leader"] = "on_duty"


class ShiftBody(Body):
    scope: str = Field(max_length=64)  # a site id or "bureau"
    date: str | None = None  # YYYY-MM-DD; today (the gateway's zone) when absent
    shift: str = Field("day", pattern=SHIFT_PATTERN)
    people: list[ShiftPerson] = Field(max_length=20)


class HandoverBody(Body):
    scope: str = Field(max_length=64)
    to: str = Field(max_length=64)
    note: str = Field("", max_length=2000)


# --------------------------------------------------------------------------------- helpers
async def _ask(fn: Callable[..., T], *args: Any) -> T:
    return await ask_database(fn, *args, unavailable="duty database unavailable")


def _now(gw: Gateway) -> datetime:
    return datetime.fromtimestamp(gw.clock(), gw.clockface.zone)


def _day(raw: str | None, gw: Gateway) -> date:
    if raw is None:
        return _now(gw).date()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "invalid request", f"date: not YYYY-MM-DD: {raw!r}") from None


def _readable_site(gw: Gateway, who: Principal, site: str, detail: str | None = None) -> None:
    if site not in gw.inventory.sites or not who.may_read(site):
        raise ApiError(404, "unknown site", detail or site)


def _require_keeper(gw: Gateway, who: Principal, scope: str) -> None:
    """Who keeps a scope's roster: the bureau its own, an institution its sites, an admin all."""
    if scope != BUREAU_SCOPE:
        # Named by the body, not the address: the answer names nothing (as elsewhere).
        _readable_site(gw, who, scope, "scope")
    if who.role is Role.ADMIN:
        return
    allowed = who.role in BUREAU_ROLES if scope == BUREAU_SCOPE else who.may_act(scope)
    if not allowed:
        raise ApiError(403, "not allowed", f"{who.login} may not keep the duty of {scope}")


def _fits(person: Person | None, scope: str, role: DutyRole) -> bool:
    """A person may be on a scope's duty: the bureau's staff at the bureau (its leader on
    call a bureau leader), an institution's people at their own sites."""
    if person is None or person.disabled:
        return False
    if scope == BUREAU_SCOPE:
        return person.role is Role.BUREAU_LEADER or (
            role is DutyRole.ON_DUTY and person.role in BUREAU_ROLES
        )
    return role is DutyRole.ON_DUTY and person.role in SITE_ROLES and scope in person.sites


async def _require_fit(gw: Gateway, login: str, scope: str, role: DutyRole) -> None:
    if not _fits(await ask_people(gw.people.get, login), scope, role):
        raise ApiError(422, "invalid request", f"{login} cannot be {role.value} of {scope}")


def _check_json(gw: Gateway, c: DailyCheck) -> dict[str, Any]:
    return {
        "submitted_at": gw.clockface.iso(c.submitted_at),
        "first_submitted_at": gw.clockface.iso(c.first_at),
        "submitted_by": c.submitted_by,
        "items": [{"item": a.item, "result": a.result.value, "note": a.note} for a in c.answers],
    }


HazardChanges = Mapping[str, list[dict[str, Any]]] | None


async def _hazard_changes(gw: Gateway, sites: list[str], day: date) -> HazardChanges:
    """Per site, every step its hazards took on `day` (the gateway's zone), oldest first;
    None when the ledger cannot answer: the self-report never waits on it."""
    zone = gw.clockface.zone
    start = datetime.combine(day, datetime.min.time(), zone).timestamp()
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).timestamp()
    try:
        steps = await ask_database(
            gw.hazards.steps_between, set(sites), start, end, unavailable="hazard ledger"
        )
    except ApiError:
        return None
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in sites}
    for h, e in steps:
        out[h.site].append(_hazard_change_json(gw, h, e))
    return out


def _hazard_change_json(gw: Gateway, h: Hazard, e: HazardEvent) -> dict[str, Any]:
    return {
        "hazard_id": h.id,
        "location": h.location,
        "description": h.description,
        "level": h.level.value,
        "level_label": LEVEL_LABELS[h.level],
        "at": gw.clockface.iso(e.at),
        "action": e.action.value,
        "actor": e.actor,
        "from": e.from_status.value if e.from_status is not None else None,
        "to": e.to_status.value,
        "to_label": STATUS_LABELS[e.to_status],
        "note": e.note,
    }


def _board_json(gw: Gateway, b: Board, changes: HazardChanges) -> dict[str, Any]:
    sites = []
    for e in b.entries:
        entry: dict[str, Any] = {
            "site": e.site,
            "name": gw.inventory.sites[e.site].name,
            "standing": e.standing.value,
            "hazard_changes": None if changes is None else changes.get(e.site, []),
        }
        entry.update(_check_json(gw, e.check) if e.check is not None else {})
        sites.append(entry)
    return {
        "date": b.day.isoformat(),
        "due": b.due_at.isoformat(),
        "remind_at": b.remind_at.isoformat(),
        "phase": b.phase.value,
        # The gateway's clock when it answered: the page counts down to `due` on it.
        "now": gw.clockface.iso(gw.clock()),
        "items": [{"id": i.id, "label": i.label} for i in gw.config.daily_checks.items],
        "sites": sites,
    }


def _board(gw: Gateway, sites: list[str], checks: dict[str, DailyCheck], day: date) -> Board:
    cfg = gw.config.daily_checks
    due, remind = parse_hhmm(cfg.due), parse_hhmm(cfg.remind_at)
    return board(sites, checks, _now(gw), due, remind, day=day)


# ---------------------------------------------------------------------------- self-report
@router.put("/api/sites/{site_id}/daily-checks/{day}")
async def submit_daily_check(
    gw: GatewayDep, who: PrincipalDep, site_id: str, day: str, body: DailyCheckBody
) -> dict[str, Any]:
    async with audited(gw, who, "daily_check.submit", f"{site_id}/{day}") as trail:
        _readable_site(gw, who, site_id)
        trail.site = site_id
        if who.role not in SITE_ROLES:  # the institution reports on itself; nobody for it
            raise ApiError(403, "not allowed", f"{who.login} may not report for {site_id}")
        when = _day(day, gw)
        now = _now(gw)
        if when > now.date():
            raise ApiError(422, "invalid request", f"date: {day} has not come yet")
        if when < now.date() - LATE_REPORT_DAYS:
            # Yesterday's may still come in late (a night shift reports after midnight); a
            # report about an older day is no inspection of it.
            raise ApiError(422, "invalid request", f"date: {day} is too long ago to report")
        items = [i.id for i in gw.config.daily_checks.items]
        try:
            answers = checked(
                (CheckAnswer(a.item, CheckResult(a.result), a.note) for a in body.items), items
            )
        except InvalidCheck as exc:
            raise ApiError(422, "invalid request", f"items: {exc}") from None
        submitted = DailyCheck(site_id, when, answers, now.timestamp(), who.actor)
        due_at = _board(gw, [site_id], {}, when).due_at.timestamp()
        try:
            stored = await _ask(gw.duty.submit, submitted, due_at)
        except CheckClosed:
            raise ApiError(
                409, "the day's report is closed", "it is in and its due time has passed"
            ) from None
        trail.detail = {
            "date": when.isoformat(),
            "problems": sum(1 for a in answers if a.result is CheckResult.PROBLEM),
            "resubmitted": stored.first_at != stored.submitted_at,
        }
    changes = await _hazard_changes(gw, [site_id], when)
    return _board_json(gw, _board(gw, [site_id], {site_id: stored}, when), changes)


@router.get("/api/daily-checks")
async def daily_checks(
    gw: GatewayDep, who: PrincipalDep, date: str | None = None
) -> dict[str, Any]:
    day = _day(date, gw)
    sites = [s for s in gw.inventory.sites if who.may_read(s)]
    checks = await _ask(gw.duty.checks_of, day, set(sites))
    changes = await _hazard_changes(gw, sites, day)
    return _board_json(gw, _board(gw, sites, checks, day), changes)


# ------------------------------------------------------------------------------- roster
@router.get("/api/duty")
async def duty(gw: GatewayDep, who: PrincipalDep, date: str | None = None) -> dict[str, Any]:
    day = _day(date, gw)
    scopes = [BUREAU_SCOPE, *(s for s in gw.inventory.sites if who.may_read(s))]
    roster = await _ask(gw.duty.roster_of, day, set(scopes))
    start = datetime.combine(day, datetime.min.time(), gw.clockface.zone).timestamp()
    handovers = await _ask(gw.duty.handovers_between, set(scopes), start, start + 86_400)
    persons = {p.login: p.name for p in await ask_people(gw.people.persons)}

    def person(login: str) -> dict[str, str]:
        return {"login": login, "name": persons.get(login, login)}

    out = []
    leader = None
    for scope in scopes:
        shifts: dict[str, dict[str, Any]] = {}
        for r in (r for r in roster if r.scope == scope):
            s = shifts.setdefault(r.shift, {"shift": r.shift, "on_duty": [], "leader": None})
            if r.role is DutyRole.LEADER:
                s["leader"] = leader = person(r.login)
            else:
                s["on_duty"].append(person(r.login))
        name = gw.config.report.county if scope == BUREAU_SCOPE else gw.inventory.sites[scope].name
        out.append({
            "scope": scope,
            "name": name,
            "shifts": list(shifts.values()),
            "handovers": [
                {"at": gw.clockface.iso(h.at), "from": person(h.from_login),
                 "to": person(h.to_login), "note": h.note}
                for h in handovers if h.scope == scope
            ],
        })  # fmt: skip
    return {
        "date": day.isoformat(),
        "per_shift": gw.config.duty.per_shift,
        "leader_on_call": leader,
        "scopes": out,
    }


@router.put("/api/duty")
async def set_duty(gw: GatewayDep, who: PrincipalDep, body: ShiftBody) -> dict[str, Any]:
    day = _day(body.date, gw)
    async with audited(gw, who, "duty.set", f"{body.scope}/{day}/{body.shift}") as trail:
        _require_keeper(gw, who, body.scope)
        trail.site = None if body.scope == BUREAU_SCOPE else body.scope
        people = [(p.login, DutyRole(p.role)) for p in body.people]
        try:
            check_shift(body.scope, people, gw.config.duty.per_shift)
        except InvalidShift as exc:
            raise ApiError(422, "invalid request", f"people: {exc}") from None
        for login, role in people:
            await _require_fit(gw, login, body.scope, role)
        await _ask(gw.duty.set_shift, body.scope, day, body.shift, people, gw.clock(), who.login)
        trail.detail = {"people": ", ".join(f"{lg}:{r.value}" for lg, r in people)}
    return {
        "scope": body.scope,
        "date": day.isoformat(),
        "shift": body.shift,
        "people": [{"login": lg, "role": r.value} for lg, r in people],
    }


@router.post("/api/duty/handover")
async def hand_over(gw: GatewayDep, who: PrincipalDep, body: HandoverBody) -> dict[str, Any]:
    async with audited(gw, who, "duty.handover", body.scope) as trail:
        _require_keeper(gw, who, body.scope)
        trail.site = None if body.scope == BUREAU_SCOPE else body.scope
        await _require_fit(gw, body.to, body.scope, DutyRole.ON_DUTY)
        h = Handover(body.scope, gw.clock(), who.login, body.to, body.note)
        await _ask(gw.duty.hand_over, h)
        trail.detail = {"to": body.to, "note": body.note}
    return {"scope": h.scope, "at": gw.clockface.iso(h.at), "from": h.from_login, "to": h.to_login,
            "note": h.note}  # fmt: skip
