"""Who is calling, and what they may read and do (DESIGN sections 8 and 10).

Owns the one way a route learns its caller and its gateway: `PrincipalDep` (a bearer token in
the `Authorization` header, or the session cookie of a logged-in browser), `LiveCallerDep`
(the live feed) and `GatewayDep`, all FastAPI dependencies over `app.state`; and the checks
that turn a refusal into the API's error: a device or alarm of a site the caller may not read
is unknown (404, the body of a missing one, whether read or acted on), a readable site it may
not act on is 403, a site served by its edge gateway is 409. No error names a site the caller
may not read.

Callers are persons (`gateway.people`): a session or an issued token names one. Tokens from
environment variables (`http.tokens`, older installs) name themselves. With nobody able to
sign in, the API is loopback-only (checked at start) and every caller is the local operator.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends
from starlette.requests import HTTPConnection

from gateway.app.supervisor import Gateway
from gateway.central.edges import CENTRAL_ALARM_TYPES
from gateway.config.checks import is_loopback
from gateway.config.inventory import AmbiguousDevice, InstalledDevice
from gateway.config.schema import GatewayConfig
from gateway.http.errors import ApiError, ask_database
from gateway.people.directory import People
from gateway.people.model import BUREAU_ROLES, SITE_ROLES, Role

log = logging.getLogger(__name__)

SESSION_COOKIE = "sg_session"
# Requests that change something: from a browser session they must come from our own pages.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# How long the answer to "can anyone sign in?" is reused (a CLI `user add` takes effect
# within this long, without a query per request).
_OPEN_CACHE_S = 2.0

Via = Literal["session", "token", "env", "local"]
T = TypeVar("T")

_ENV_ROLES = {"duty": Role.DUTY, "admin": Role.ADMIN, "bureau": Role.BUREAU}


@dataclass(frozen=True, slots=True)
class Principal:
    login: str
    name: str
    role: Role
    sites: frozenset[str] | None  # None: every site
    via: Via = "local"
    source: str = ""  # the client's address
    credential: str | None = None  # the session's hash or the token's id

    @property
    def actor(self) -> str:
        """The person as timelines and records name them."""
        return self.login if self.name == self.login else f"{self.name} ({self.login})"

    def acting(self, typed: str | None, note: str) -> tuple[str, str | None]:
        """The actor and note to record for an action with a typed name and a note. The
        actor is the authenticated person; a typed name that says something else is kept in
        the note. The local operator (no accounts, loopback only) is nobody in particular:
        there the typed name is the actor, as before accounts existed."""
        note = note.strip()
        typed = (typed or "").strip()
        if self.via == "local":
            if not typed:  # nobody signed in: the typed name is all the record has
                raise ApiError(422, "invalid request", "by: name the person acting")
            return typed, note or None
        if typed and typed not in (self.name, self.login):
            typed_part = f"填写姓名：{typed}"
            note = f"{note}（{typed_part}）" if note else typed_part
        return self.actor, note or None

    def may_read(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def may_act(self, site: str) -> bool:
        return (self.role is Role.ADMIN or self.role in SITE_ROLES) and self.may_read(site)

    def may_act_on(self, site: str, alarm_type: str) -> bool:
        """The bureau acts on the alarms the bureau owns (an edge gateway lost), nothing else."""
        if self.role in BUREAU_ROLES:
            return alarm_type in CENTRAL_ALARM_TYPES and self.may_read(site)
        return self.may_act(site)


LOCAL = Principal("local", "local", Role.ADMIN, None, "local")


class Auth:
    """The ways a caller proves who they are: env tokens (read at start), issued tokens and
    sessions (from `People`)."""

    def __init__(
        self,
        config: GatewayConfig,
        people: People,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.people = people
        self.clock = clock
        sessions = config.http.sessions
        self.idle_s = sessions.idle_minutes * 60.0
        self.absolute_s = sessions.absolute_hours * 3600.0
        self._tokens: list[tuple[bytes, Principal]] = []
        for t in config.http.tokens:
            value = os.environ.get(t.token_env)
            if not value:
                raise RuntimeError(
                    f"environment variable {t.token_env} for token {t.name!r} is not set"
                )
            sites = None if t.role != "duty" else frozenset(t.sites)
            self._tokens.append(
                (value.encode(), Principal(t.name, t.name, _ENV_ROLES[t.role], sites, "env"))
            )
        self._open_until = 0.0
        self._accounts = config.http.accounts
        self._open = not self._tokens and not self._accounts

    async def is_open(self) -> bool:
        """True while nobody can sign in: every caller is the local operator."""
        if self._tokens or self._accounts:
            return False
        now = time.monotonic()
        if now >= self._open_until:
            try:
                self._open = not await asyncio.to_thread(self.people.can_sign_in)
            except Exception:
                # Unknown is closed: accounts may exist in a database we cannot read, and the
                # local operator mode must never be what a broken disk turns on.
                log.exception("cannot tell whether anyone can sign in; refusing callers")
                self._open = False
            self._open_until = now + _OPEN_CACHE_S
        return self._open

    def forget_open(self) -> None:
        """Ask again at the next request (an account was just made or disabled here)."""
        self._open_until = 0.0

    async def principal(self, conn: HTTPConnection, *, query_token: bool = False) -> Principal:
        source = conn.client.host if conn.client else ""
        header = conn.headers.get("authorization")
        token = None
        if header and header.lower().startswith("bearer "):
            token = header[7:].strip()
        elif query_token:
            token = conn.query_params.get("token")
        if token:
            return await self._token_principal(token, source)
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie:
            found = await ask_people(
                self.people.session_owner,
                cookie,
                self.clock(),
                idle_s=self.idle_s,
                absolute_s=self.absolute_s,
            )
            if found is not None:
                p = found.person
                sites = None if p.every_site else p.sites
                return Principal(p.login, p.name, p.role, sites, "session", source, found.session)
        # The local operator is a person at this machine: a request from another address (or
        # relayed by a trusted proxy for one, see `http.trusted_proxies`) never is.
        if await self.is_open() and is_loopback(source):
            return Principal(LOCAL.login, LOCAL.name, LOCAL.role, None, "local", source)
        if cookie:
            raise ApiError(401, "session expired", "log in again")
        raise ApiError(401, "authentication required", "log in, or send Authorization: Bearer")

    async def _token_principal(self, token: str, source: str) -> Principal:
        given = token.encode()
        found = None
        for value, principal in self._tokens:
            if hmac.compare_digest(value, given):
                found = principal
        if found is not None:
            return Principal(found.login, found.name, found.role, found.sites, "env", source)
        owner = await ask_people(self.people.token_owner, token, self.clock())
        if owner is None:
            raise ApiError(401, "invalid token")
        p, token_id = owner
        sites = None if p.every_site else p.sites
        return Principal(p.login, p.name, p.role, sites, "token", source, token_id)


async def ask_people(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A question to the people database (see `ask_database`)."""
    return await ask_database(fn, *args, unavailable="sign-in is unavailable", **kwargs)


# ------------------------------------------------------------------------- dependencies
# app.state is untyped: these are the only places that read it.
def _gateway(conn: HTTPConnection) -> Gateway:
    return conn.app.state.gateway  # type: ignore[no-any-return]


def auth_of(conn: HTTPConnection) -> Auth:
    return conn.app.state.auth  # type: ignore[no-any-return]


def _same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    if origin is None:
        return False
    host = conn.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def _principal(conn: HTTPConnection) -> Principal:
    who = await auth_of(conn).principal(conn)
    # A session rides along on any request the browser makes, a cross-site form's too: a
    # change made with one must come from our own pages (SameSite=Strict is the first wall).
    changes = conn.scope.get("method") not in _SAFE_METHODS
    if who.via == "session" and changes and not _same_origin(conn):
        raise ApiError(403, "cross-site request refused", "send it from the gateway's pages")
    return who


async def refusal(conn: HTTPConnection) -> ApiError | None:
    """The error the caller of `conn` would get from `PrincipalDep` (401), or None; for
    refusals decided before a route runs (an oversized body)."""
    auth: Auth | None = getattr(conn.app.state, "auth", None)
    if auth is None:  # not started yet: the route will answer
        return None
    try:
        await auth.principal(conn)
    except ApiError as exc:
        return exc
    return None


async def _live_caller(conn: HTTPConnection) -> Principal | None:
    # A browser's WebSocket sends the session cookie; a script that cannot set a header may
    # pass a token in the address (uvicorn logs no request lines: it never reaches a log).
    # A refusal is None, not an error: the feed answers it with close code 4401.
    try:
        who = await auth_of(conn).principal(conn, query_token=True)
    except ApiError:
        return None
    # A page of another site opening the feed with the person's cookie (browsers send the
    # Origin of every WebSocket; SameSite=Strict is the first wall, this the second).
    if who.via == "session" and not _same_origin(conn):
        return None
    return who


GatewayDep = Annotated[Gateway, Depends(_gateway)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
LiveCallerDep = Annotated[Principal | None, Depends(_live_caller)]


# ------------------------------------------------------------------------------- checks
def require_act(who: Principal, site: str, what: str = "act on site") -> None:
    """403 unless `who` may act on `site`; `what` words the refusal ("act on site")."""
    if not who.may_act(site):
        raise ApiError(403, "not allowed", f"{who.login} may not {what} {site}")


def require_role(who: Principal, roles: frozenset[Role], what: str) -> None:
    if who.role not in roles:
        raise ApiError(403, "not allowed", f"{who.login} ({who.role.value}) may not {what}")


def require_authority(gw: Gateway, site: str) -> None:
    """409 for a site this gateway only observes: its edge gateway acts for it."""
    if not gw.authority.decides(site):
        raise ApiError(
            409,
            f"site {site} is served by its edge gateway",
            "acknowledge, close and command there; this gateway only observes it",
        )


def readable_device(
    gw: Gateway, device_id: str, site: str | None, who: Principal
) -> InstalledDevice:
    """The device `who` asks for; one they may not read is as unknown as a missing one, and
    an id used in several sites is ambiguous only among the sites `who` may read."""
    try:
        installed = gw.inventory.resolve(device_id, site)
    except AmbiguousDevice as exc:
        readable = [s for s in exc.sites if who.may_read(s)]
        if len(readable) > 1:
            raise ApiError(
                400,
                f"device {device_id!r} exists in several sites: {', '.join(readable)}",
                {"sites": readable, "hint": "add ?site= or a site field"},
            ) from None
        installed = gw.inventory.resolve(device_id, readable[0]) if readable else None
    if installed is None or not who.may_read(installed.ref.site):
        raise ApiError(404, "unknown device", device_id)
    return installed


def actable_device(
    gw: Gateway, device_id: str, site: str | None, who: Principal, what: str = "act on site"
) -> InstalledDevice:
    """A device `who` may change (command, maintenance) through this gateway."""
    installed = readable_device(gw, device_id, site, who)
    require_act(who, installed.ref.site, what)
    require_authority(gw, installed.ref.site)
    return installed
