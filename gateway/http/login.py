"""Logging in and out: `POST /api/login`, `POST /api/logout`, `GET /api/me`, and the login
page `/login` (Chinese, no CDN).

A login sets the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS). Failed logins
are answered more slowly each time and then locked, per account and per address
(`gateway.people.throttle`); every attempt is on the audit trail.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import Field

from gateway.http.auth import SESSION_COOKIE, GatewayDep, PrincipalDep, ask_people, auth_of
from gateway.http.errors import ApiError
from gateway.http.params import Body
from gateway.http.static import WEB_DIR, page
from gateway.http.trail import record, record_by
from gateway.people.model import ROLE_LABELS, Role
from gateway.people.passwords import DUMMY_HASH, verify_password
from gateway.people.throttle import LoginThrottle

router = APIRouter()
LOGIN_PAGE = WEB_DIR / "login" / "index.html"


class LoginBody(Body):
    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def throttle_of(request: Request) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "throttle", None)
    if throttle is None:
        throttle = request.app.state.throttle = LoginThrottle()
    return throttle


@router.get("/login", include_in_schema=False)
async def login_page() -> FileResponse:
    return page(LOGIN_PAGE)


@router.post("/api/login")
async def login(gw: GatewayDep, request: Request, body: LoginBody) -> JSONResponse:
    auth = auth_of(request)
    source = request.client.host if request.client else ""
    login = body.login.strip().lower()
    throttle = throttle_of(request)
    now = gw.clock()
    verdict = throttle.verdict(login, source, now)

    async def refuse(result: str, status: int, error: str, headers: dict[str, str]) -> None:
        await record(
            gw, actor=login, actor_name="", role="", source=source, action="session.login",
            target=login, result=result,
        )  # fmt: skip
        raise ApiError(status, error, None, headers)

    if verdict.locked:
        wait = int(verdict.locked_for_s) + 1
        await refuse("locked", 429, "too many failed logins", {"retry-after": str(wait)})
    stored = await ask_people(auth.people.password_hash, login)
    # An unknown login costs as much as a wrong password: the time tells nothing.
    ok = await asyncio.to_thread(verify_password, stored or DUMMY_HASH, body.password)
    person = await ask_people(auth.people.get, login) if ok and stored else None
    if person is None or person.disabled:
        throttle.failed(login, source, now)
        await asyncio.sleep(verdict.delay_s)
        await refuse("failed", 401, "wrong login or password", {})
    assert person is not None
    throttle.succeeded(login, source)
    secret = await ask_people(auth.people.start_session, login, source, now)
    await record(
        gw, actor=login, actor_name=person.name, role=person.role.value, source=source,
        action="session.login", target=login,
    )  # fmt: skip
    answer = _person_json(person.login, person.name, person.role.value, person.sites)
    answer |= {"every_site": person.every_site, "via": "session"}  # as /api/me answers
    response = JSONResponse(answer)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(auth.absolute_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    auth.forget_open()
    return response


@router.post("/api/logout")
async def logout(gw: GatewayDep, who: PrincipalDep, request: Request) -> JSONResponse:
    auth = auth_of(request)
    if who.via == "session" and who.credential is not None:
        await ask_people(auth.people.end_session, who.credential)
        await record_by(gw, who, "session.logout", target=who.login)
    response = JSONResponse({"logged_out": who.via == "session"})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/api/me")
async def me(who: PrincipalDep) -> dict[str, Any]:
    body = _person_json(who.login, who.name, who.role.value, who.sites or frozenset())
    body["every_site"] = who.sites is None
    body["via"] = who.via
    return body


def _person_json(login: str, name: str, role: str, sites: frozenset[str]) -> dict[str, Any]:
    return {
        "login": login,
        "name": name,
        "role": role,
        "role_label": ROLE_LABELS[Role(role)],
        "sites": sorted(sites),
    }
