"""`GET/POST /api/incidents` (`?open=true|false`), `GET /api/incidents/{id}` (`?format=html`:
the written report, printable), `POST /api/incidents/{id}/phone-report`, `/written-report`,
`/follow-ups` and `/close` (DESIGN section 11, seed 003).

An institution's people open and report incidents of their own sites; the bureau reads every
site it may read. Another site's incident is unknown (404), as a missing one. Every change is
on the audit trail. The clocks are computed at each read, at the gateway's wall time, by
`gateway.incidents.model.clocks`. Closing a critical alarm as real opens an incident
(`open_for_closed_alarm`, called by the close route). An incident is closed (结案) once its
written report is in; a closed one takes follow-ups only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from html import escape
from typing import Any, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import Field

from gateway.alarms.book import Alarm
from gateway.app.supervisor import Gateway
from gateway.http.auth import GatewayDep, Principal, PrincipalDep
from gateway.http.errors import ApiError, ask_database
from gateway.http.params import Body, parse_time
from gateway.http.trail import Audited, audited
from gateway.incidents.model import (
    ClockState,
    CloseRefusal,
    Deadlines,
    FollowUp,
    Incident,
    PhoneReport,
    ReportClock,
    WrittenReport,
    clocks,
    should_open,
)
from gateway.incidents.store import (
    AlreadyOpen,
    AlreadyReported,
    IncidentClosed,
    NotClosable,
    UnknownIncident,
    new_incident_id,
)
from gateway.notify.render import alarm_label

log = logging.getLogger(__name__)
router = APIRouter()
T = TypeVar("T")

MAX_LIMIT = 1000
# A report's time may be typed by hand; a clock a little ahead of ours is not a lie.
FUTURE_SKEW_S = 120.0
_TEXT = 4000  # characters per field of a report


class OpenBody(Body):
    site: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    alarm_id: str | None = Field(None, min_length=1, max_length=128)
    by: str | None = Field(None, max_length=64)  # the local operator's name (no accounts)


class PhoneReportBody(Body):
    to_whom: str = Field(min_length=1, max_length=200)
    at: str | None = Field(None, description="when the call was made, ISO 8601; default now")
    by: str | None = Field(None, max_length=64)


class WrittenReportBody(Body):
    what_happened: str = Field(min_length=1, max_length=_TEXT)
    where: str = Field(min_length=1, max_length=_TEXT)
    people_affected: str = Field(min_length=1, max_length=_TEXT)
    measures_taken: str = Field(min_length=1, max_length=_TEXT)
    current_state: str = Field(min_length=1, max_length=_TEXT)
    follow_up: str = Field(min_length=1, max_length=_TEXT)
    by: str | None = Field(None, max_length=64)


class FollowUpBody(Body):
    text: str = Field(min_length=1, max_length=_TEXT)
    by: str | None = Field(None, max_length=64)


class CloseBody(Body):
    note: str = Field(min_length=1, max_length=2000)
    by: str | None = Field(None, max_length=64)


# --------------------------------------------------------------------------- helpers
async def _ask(fn: Callable[..., T], *args: Any) -> T:
    return await ask_database(fn, *args, unavailable="incidents are unavailable")


def _deadlines(gw: Gateway) -> Deadlines:
    section = gw.config.incidents
    return Deadlines.from_minutes(section.phone_report_minutes, section.written_report_minutes)


def _clock_json(gw: Gateway, c: ReportClock) -> dict[str, Any]:
    return {
        "due_at": gw.clockface.iso(c.due_at),
        "done_at": gw.clockface.iso(c.done_at),
        "state": c.state.value,
        "seconds_left": c.seconds_left,
    }


def incident_json(gw: Gateway, incident: Incident, now: float) -> dict[str, Any]:
    iso = gw.clockface.iso
    c = clocks(incident, now, _deadlines(gw))
    phone, written = incident.phone_report, incident.written_report
    return {
        "id": incident.id,
        "site": incident.site,
        "alarm_id": incident.alarm_id,
        "title": incident.title,
        "opened_at": iso(incident.opened_at),
        "opened_by": incident.opened_by,
        "closed_at": iso(incident.closed_at),
        "closed_by": incident.closed_by,
        "close_note": incident.close_note,
        "phone_report": {**asdict(phone), "at": iso(phone.at)} if phone else None,
        "written_report": {**asdict(written), "at": iso(written.at)} if written else None,
        "follow_ups": [{**asdict(f), "at": iso(f.at)} for f in incident.follow_ups],
        "clocks": {"phone": _clock_json(gw, c.phone), "written": _clock_json(gw, c.written)},
    }


def _known_site(gw: Gateway, who: Principal, site: str, detail: str) -> None:
    # A site the caller may not read is as unknown as one that does not exist.
    if not who.may_read(site) or all(s.id != site for s in gw.config.sites):
        raise ApiError(404, "unknown site", detail)


async def _readable(gw: Gateway, who: Principal, incident_id: str) -> Incident:
    found = await _ask(gw.incidents.get, incident_id)
    if found is None or not who.may_read(found.site):
        raise ApiError(404, "unknown incident", incident_id)
    return found


async def _actable(gw: Gateway, who: Principal, incident_id: str, trail: Audited) -> Incident:
    found = await _readable(gw, who, incident_id)
    trail.site = found.site
    if not who.may_act(found.site):
        raise ApiError(403, "not allowed", f"{who.login} may not act on site {found.site}")
    return found


# ---------------------------------------------------------------------------- routes
@router.get("/api/incidents")
async def incidents(
    gw: GatewayDep,
    who: PrincipalDep,
    site: str | None = None,
    limit: int = Query(200, ge=1, le=MAX_LIMIT),
    is_open: bool | None = Query(None, alias="open", description="only the open (or closed)"),
) -> list[dict[str, Any]]:
    if site is not None:
        _known_site(gw, who, site, site)
    sites = {site} if site is not None else who.sites
    found = await _ask(gw.incidents.query, sites, limit, is_open)
    now = gw.clock()
    return [incident_json(gw, i, now) for i in found]


@router.post("/api/incidents", status_code=201)
async def open_incident(gw: GatewayDep, who: PrincipalDep, body: OpenBody) -> dict[str, Any]:
    incident_id = new_incident_id()
    async with audited(gw, who, "incident.open", incident_id) as trail:
        _known_site(gw, who, body.site, "site")  # the body's: not echoed back
        trail.site = body.site
        if not who.may_act(body.site):
            raise ApiError(403, "not allowed", f"{who.login} may not act on site {body.site}")
        if body.alarm_id is not None:
            alarm = gw.book.get(body.alarm_id) or await gw.store.get(body.alarm_id)
            if alarm is None or alarm.site != body.site:
                raise ApiError(422, "invalid request", f"alarm_id: no such alarm at {body.site}")
        actor, _ = who.acting(body.by, "")
        trail.detail = {"alarm_id": body.alarm_id, "title": body.title}
        incident = Incident(incident_id, body.site, body.alarm_id, body.title, gw.clock(), actor)
        try:
            stored = await _ask(gw.incidents.open_incident, incident)
        except AlreadyOpen as exc:
            detail = {"incident": exc.incident_id}
            raise ApiError(409, "the alarm has an open incident", detail) from None
    return incident_json(gw, stored, gw.clock())


@router.get("/api/incidents/{incident_id}", response_model=None)
async def incident(
    gw: GatewayDep,
    who: PrincipalDep,
    incident_id: str,
    fmt: str = Query("json", alias="format", description="json or html"),
) -> dict[str, Any] | HTMLResponse:
    if fmt not in ("json", "html"):
        raise ApiError(422, "invalid request", "format: one of json, html")
    found = await _readable(gw, who, incident_id)
    if fmt == "html":
        return HTMLResponse(
            render_written_report(gw, found, gw.clock()),
            # What people typed is escaped; nothing in the page runs or loads anything.
            headers={"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'"},
        )
    return incident_json(gw, found, gw.clock())


@router.post("/api/incidents/{incident_id}/phone-report")
async def phone_report(
    gw: GatewayDep, who: PrincipalDep, incident_id: str, body: PhoneReportBody
) -> dict[str, Any]:
    async with audited(gw, who, "incident.phone_report", incident_id) as trail:
        found = await _actable(gw, who, incident_id, trail)
        now = gw.clock()
        at = parse_time(body.at, "at")
        at = now if at is None else at
        if at > now + FUTURE_SKEW_S or at < found.opened_at:
            raise ApiError(422, "invalid request", "at: between the incident's opening and now")
        actor, _ = who.acting(body.by, "")
        trail.detail = {"to_whom": body.to_whom, "at": gw.clockface.iso(at)}
        report = PhoneReport(body.to_whom, at, actor)
        stored = await _report(gw.incidents.add_phone_report, incident_id, report)
    return incident_json(gw, stored, gw.clock())


@router.post("/api/incidents/{incident_id}/written-report")
async def written_report(
    gw: GatewayDep, who: PrincipalDep, incident_id: str, body: WrittenReportBody
) -> dict[str, Any]:
    async with audited(gw, who, "incident.written_report", incident_id) as trail:
        await _actable(gw, who, incident_id, trail)
        actor, _ = who.acting(body.by, "")
        fields = body.model_dump(exclude={"by"})
        report = WrittenReport(**fields, at=gw.clock(), by=actor)
        stored = await _report(gw.incidents.add_written_report, incident_id, report)
    return incident_json(gw, stored, gw.clock())


@router.post("/api/incidents/{incident_id}/follow-ups")
async def follow_up(
    gw: GatewayDep, who: PrincipalDep, incident_id: str, body: FollowUpBody
) -> dict[str, Any]:
    async with audited(gw, who, "incident.follow_up", incident_id) as trail:
        await _actable(gw, who, incident_id, trail)
        actor, _ = who.acting(body.by, "")
        item = FollowUp(gw.clock(), actor, body.text)
        stored = await _report(gw.incidents.add_follow_up, incident_id, item)
    return incident_json(gw, stored, gw.clock())


_CLOSE_REFUSALS = {
    CloseRefusal.ALREADY_CLOSED: "the incident is already closed",
    CloseRefusal.NO_WRITTEN_REPORT: "the written report is not in yet",
}


@router.post("/api/incidents/{incident_id}/close")
async def close_incident(
    gw: GatewayDep, who: PrincipalDep, incident_id: str, body: CloseBody
) -> dict[str, Any]:
    async with audited(gw, who, "incident.close", incident_id) as trail:
        await _actable(gw, who, incident_id, trail)
        note = body.note.strip()
        if not note:
            raise ApiError(422, "invalid request", "note: say how the incident ended")
        actor, _ = who.acting(body.by, "")
        trail.detail = {"note": note}
        try:
            stored = await _ask(gw.incidents.close_incident, incident_id, gw.clock(), actor, note)
        except UnknownIncident:
            raise ApiError(404, "unknown incident", incident_id) from None
        except NotClosable as exc:
            found = exc.incident
            detail = (
                {"closed_at": gw.clockface.iso(found.closed_at), "closed_by": found.closed_by}
                if exc.reason is CloseRefusal.ALREADY_CLOSED
                else "submit the written report first"
            )
            raise ApiError(409, _CLOSE_REFUSALS[exc.reason], detail) from None
    return incident_json(gw, stored, gw.clock())


async def _report(fn: Callable[[str, T], Incident], incident_id: str, report: T) -> Incident:
    try:
        return await _ask(fn, incident_id, report)
    except UnknownIncident:
        raise ApiError(404, "unknown incident", incident_id) from None
    except AlreadyReported as exc:
        raise ApiError(409, str(exc), "append a follow-up instead") from None
    except IncidentClosed:
        raise ApiError(409, "the incident is closed", "append a follow-up instead") from None


async def open_for_confirmed_alarm(
    gw: Gateway, who: Principal, alarm: Alarm, disposition: str, at: float, by: str
) -> str | None:
    """The incident an alarm a person just confirmed as real opens (seed 003: a critical alarm
    of a hazard), at `at` — the acknowledgement that said "real", or the close — unless it
    has one already; its id, or None. A failure here is logged and audited, never the
    acknowledgement's or the close's: the alarm has moved already."""
    opening = should_open(alarm.type, alarm.severity, disposition)
    if not opening.opens:
        return None
    incident_id = new_incident_id()
    try:
        found = await _ask(gw.incidents.open_for_alarm, alarm.id)
        if found is not None:
            return found.id
        location = gw.alarm_view(alarm, timeline=False).get("location") or alarm.device
        incident = Incident(
            incident_id, alarm.site, alarm.id, f"{alarm_label(alarm.type.value)} {location}",
            at, by,
        )  # fmt: skip
        async with audited(gw, who, "incident.open", incident_id) as trail:
            trail.site = alarm.site
            trail.detail = {"alarm_id": alarm.id, "reason": opening.value}
            await _ask(gw.incidents.open_incident, incident)
    except AlreadyOpen:
        return None  # another confirmation at the same moment opened it
    except Exception:
        log.exception("no incident opened for alarm %s confirmed as real", alarm.id)
        return None
    return incident_id


async def open_for_closed_alarm(gw: Gateway, who: Principal, alarm: Alarm) -> None:
    """A just-closed alarm, closed as real: its incident, from the close."""
    disposition = alarm.disposition.value if alarm.disposition else ""
    at = alarm.closed_at if alarm.closed_at is not None else gw.clock()
    await open_for_confirmed_alarm(gw, who, alarm, disposition, at, alarm.closed_by or who.actor)


# ------------------------------------------------------------------------------- HTML
_STATE_LABELS = {
    ClockState.RUNNING: "计时中",
    ClockState.DONE: "按时",
    ClockState.DONE_LATE: "超时完成",
    ClockState.MISSED: "已超时",
}
_WRITTEN_LABELS = (
    ("what_happened", "事件经过"),
    ("where", "发生地点"),
    ("people_affected", "人员伤亡及影响"),
    ("measures_taken", "已采取措施"),
    ("current_state", "目前状况"),
    ("follow_up", "后续工作"),
)
_STYLE = """
body { font-family: "SimSun", "Songti SC", serif; max-width: 46em; margin: 2em auto; }
h1 { text-align: center; font-size: 1.6em; letter-spacing: .2em; }
table { width: 100%; border-collapse: collapse; }
th, td { border: 1px solid #000; padding: .45em .6em; vertical-align: top; text-align: left; }
th { width: 9em; white-space: nowrap; }
td { white-space: pre-wrap; }
.late { font-weight: bold; }
@media print { body { margin: 0; } }
"""


def render_written_report(gw: Gateway, incident: Incident, now: float) -> str:
    """The written report (书面报告) as one printable page; what is not yet reported says so."""
    zone = gw.clockface.zone

    def when(ts: float | None) -> str:
        if ts is None:
            return "—"
        return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")

    def row(label: str, value: str, cls: str = "") -> str:
        attr = f' class="{cls}"' if cls else ""
        return f"<tr><th>{escape(label)}</th><td{attr}>{escape(value)}</td></tr>"

    c = clocks(incident, now, _deadlines(gw))
    site_name = next((s.name for s in gw.config.sites if s.id == incident.site), incident.site)
    phone, written = incident.phone_report, incident.written_report

    def timing(clock: ReportClock) -> str:
        return f"{_STATE_LABELS[clock.state]}（时限 {when(clock.due_at)}）"

    rows = [
        row("单位", site_name),
        row("事件", incident.title),
        row("事件编号", incident.id),
        row("关联报警", incident.alarm_id or "—"),
        row("发生时间", when(incident.opened_at)),
        row("登记人", incident.opened_by),
    ]
    late = {ClockState.DONE_LATE, ClockState.MISSED}
    if phone is not None:
        rows.append(row("电话报告", f"{when(phone.at)} 向 {phone.to_whom} 报告；报告人 {phone.by}"))
    else:
        rows.append(row("电话报告", "尚未电话报告"))
    rows.append(row("电话报告时限", timing(c.phone), "late" if c.phone.state in late else ""))
    if written is not None:
        fields = asdict(written)
        rows += [row(label, str(fields[key])) for key, label in _WRITTEN_LABELS]
        rows.append(row("报告人", written.by))
        rows.append(row("报告时间", when(written.at)))
    else:
        rows.append(row("书面报告", "尚未提交书面报告"))
    rows.append(row("书面报告时限", timing(c.written), "late" if c.written.state in late else ""))
    for i, f in enumerate(incident.follow_ups, 1):
        rows.append(row(f"续报 {i}", f"{when(f.at)} {f.by}：{f.text}"))
    if incident.closed_at is not None:
        rows.append(row("结案时间", when(incident.closed_at)))
        rows.append(row("结案人", incident.closed_by or "—"))
        rows.append(row("结案说明", incident.close_note or "—"))
    else:
        rows.append(row("结案", "尚未结案"))
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(site_name)} 突发事件书面报告 {escape(incident.id)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>突发事件书面报告</h1><table>{''.join(rows)}</table>"
        f"<p>打印时间：{escape(when(now))}</p></body></html>"
    )
