"""The mobile page of an acknowledgement link (issue 11, README "Acknowledge from the phone").

`GET /a/{code}` shows the alarm the link is about; `POST /a/{code}` (a plain form: `status`
seen|on_way|on_site, `note`) records the person's answer. The code is the credential: it
names one person and one occurrence of one alarm, so the page needs no session, cookie or
Origin check. The first answer acknowledges the alarm as that person, exactly as the console
does (escalation stops); every answer goes on the alarm's timeline and into the audit trail.

The page itself is `gateway.http.phone_page`: server-rendered, no script, no CDN, a strict
CSP; it must work on any phone and over a poor link. Wrong codes count against the address
(`LoginThrottle`, its own instance): guessing 80-bit codes is hopeless, and stays slow.
Every refusal is a Chinese page with its status (404 unknown, 410 expired or no longer
valid, 429 too many tries); nothing here answers with a stack trace or JSON.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.alarms.book import Alarm, AlarmNotFound, AlarmState, TransitionRefused
from gateway.app.supervisor import Gateway
from gateway.config.text import clean_text
from gateway.http.auth import GatewayDep
from gateway.http.phone_page import (
    STATUS_LABELS,
    Opened,
    alarm_page,
    banner,
    clock_text,
    expired,
    notice,
    revoked,
    superseded,
    too_many,
    unknown,
)
from gateway.http.trail import record
from gateway.notify.policy import WHOLE
from gateway.people.links import NOTE_MAX, AckLink, LinkStatus, Refusal, Responded
from gateway.people.throttle import LoginThrottle

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

VIA = "phone_link"
FORM_MAX_BYTES = 4096


def throttle_of(request: Request) -> LoginThrottle:
    """Wrong codes per address, apart from the logins' counts (a mistyped password does not
    lock a phone link, nor the other way round)."""
    throttle: LoginThrottle | None = getattr(request.app.state, "link_throttle", None)
    if throttle is None:
        throttle = request.app.state.link_throttle = LoginThrottle()
    return throttle


# ------------------------------------------------------------------------ the routes
def _source(request: Request) -> str:
    return request.client.host if request.client else ""


def _occurrence(a: Alarm) -> str:
    return f"{a.count}:{a.severity.value}"


async def _open(gw: Gateway, request: Request, code: str) -> Opened | HTMLResponse:
    """The link, its person and its alarm; or the page that says why not."""
    source = _source(request)
    throttle = throttle_of(request)
    now = gw.clock()
    verdict = throttle.verdict(source, source, now)
    if verdict.locked:
        return too_many(verdict.locked_for_s)
    found = await asyncio.to_thread(gw.links.lookup, code.strip().lower(), now)
    if found is Refusal.UNKNOWN:
        throttle.failed(source, source, now)
        await asyncio.sleep(verdict.delay_s)
        return unknown()
    if found is Refusal.EXPIRED:
        return expired()
    assert isinstance(found, AckLink)
    person = await asyncio.to_thread(gw.people.get, found.login)
    alarm = gw.book.get(found.alarm_id) or await gw.store.get(found.alarm_id)
    if alarm is None:
        return unknown()  # archived long ago: the link expired with it
    if person is None or person.disabled or not (person.every_site or alarm.site in person.sites):
        return revoked()
    closed = alarm.state is AlarmState.CLOSED
    if not closed and _occurrence(alarm) != found.occurrence.removesuffix(WHOLE):
        return superseded()
    return Opened(found, person, alarm)


@router.get("/a/{code}")
async def show(gw: GatewayDep, request: Request, code: str) -> HTMLResponse:
    opened = await _open(gw, request, code)
    if isinstance(opened, HTMLResponse):
        return opened
    return alarm_page(gw, opened, code.strip().lower())


async def _form_fields(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > FORM_MAX_BYTES:
        return {}
    fields = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=4)
    return {k: v[0] for k, v in fields.items() if v}


@router.post("/a/{code}")
async def respond(gw: GatewayDep, request: Request, code: str) -> HTMLResponse:
    code = code.strip().lower()
    opened = await _open(gw, request, code)
    if isinstance(opened, HTMLResponse):
        return opened
    try:
        fields = await _form_fields(request)
        status = LinkStatus(fields.get("status", ""))
    except ValueError:
        return notice("无法识别", "请点击页面上的按钮回复。", 400)
    note = clean_text(fields.get("note", ""), multiline=True).strip()[:NOTE_MAX] or None
    person, alarm = opened.person, opened.alarm
    if alarm.state is AlarmState.CLOSED:
        return alarm_page(gw, opened, code)  # nothing left to answer: it says who closed it
    source = _source(request)
    answered = await asyncio.to_thread(gw.links.respond, code, status, note, source, gw.clock())
    if isinstance(answered, Refusal):  # expired between the two looks
        return expired() if answered is Refusal.EXPIRED else unknown()
    label = STATUS_LABELS[status]
    opened = Opened(answered.link, person, alarm)
    if answered.repeated is not None:
        when = clock_text(gw, answered.repeated.at)
        said = f"您已于 {when} 回复过「{label}」，无需重复提交。"
        return alarm_page(gw, opened, code, banner(said, "reused"))
    acked = await _acknowledge(gw, opened, note, source)
    await _on_timeline(gw, opened, answered, status, note, source)
    alarm = gw.book.get(alarm.id) or alarm
    done = "已确认报警，升级通知已停止。" if acked else "已记录。"
    said = f"「{label}」{done}"
    return alarm_page(gw, Opened(answered.link, person, alarm), code, banner(said, "done"))


async def _acknowledge(gw: Gateway, o: Opened, note: str | None, source: str) -> bool:
    """The first answer acknowledges, as the console's ack does; one acknowledged by someone
    else already stays theirs."""
    a, person = o.alarm, o.person
    if a.acked or not gw.authority.acts_on(a):
        return False
    try:
        await gw.actions.ack(a.id, person.actor, note)
    except (TransitionRefused, AlarmNotFound):
        return False
    await record(
        gw, actor=person.login, actor_name=person.name, role=person.role.value, source=source,
        action="alarm.ack", site=a.site, target=a.id, detail={"via": VIA},
    )  # fmt: skip
    return True


async def _on_timeline(
    gw: Gateway, o: Opened, answered: Responded, status: LinkStatus, note: str | None, source: str
) -> None:
    a, person = o.alarm, o.person
    result = "ok"
    if gw.authority.acts_on(a):  # a mirrored alarm's timeline is its edge gateway's
        try:
            await gw.actions.respond(a.id, person.actor, status.value, note, via=VIA, source=source)
        except AlarmNotFound:
            result = "closed"  # closed meanwhile: the link and the audit trail keep it
    await record(
        gw, actor=person.login, actor_name=person.name, role=person.role.value, source=source,
        action="link.respond", site=a.site, target=a.id, result=result,
        detail={"status": status.value, "first": answered.first},
    )  # fmt: skip
