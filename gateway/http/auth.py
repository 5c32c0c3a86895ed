"""Who is calling, and what they may read and do (DESIGN section 8, Auth).

Owns the one way a route learns its caller and its gateway: `PrincipalDep` (bearer token in
the `Authorization` header), `LiveCallerDep` (the live feed, where a browser can pass the
token only in the address) and `GatewayDep`, all FastAPI dependencies over `app.state`; and
the checks that turn a refusal into the API's error: a device or alarm of a site the caller
may not read is unknown (404, the body of a missing one, whether read or acted on), a
readable site it may not act on is 403, a site served by its edge gateway is 409. No error
names a site the caller may not read.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends
from starlette.requests import HTTPConnection

from gateway.app.supervisor import Gateway
from gateway.config.inventory import AmbiguousDevice, InstalledDevice
from gateway.config.schema import GatewayConfig
from gateway.http.errors import ApiError

Role = Literal["duty", "admin", "bureau"]  # as the config's tokens have them


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    sites: frozenset[str] | None  # None: every site

    def may_read(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def may_act(self, site: str) -> bool:
        return self.role in ("admin", "duty") and self.may_read(site)


class Auth:
    """Bearer tokens from the environment. With none configured, the API is loopback-only
    (enforced at start by the config check) and every caller is the local operator."""

    def __init__(self, config: GatewayConfig) -> None:
        self._tokens: list[tuple[bytes, Principal]] = []
        for t in config.http.tokens:
            value = os.environ.get(t.token_env)
            if not value:
                raise RuntimeError(
                    f"environment variable {t.token_env} for token {t.name!r} is not set"
                )
            sites = None if t.role != "duty" else frozenset(t.sites)
            self._tokens.append((value.encode(), Principal(t.name, t.role, sites)))

    @property
    def open(self) -> bool:
        return not self._tokens

    def principal(self, header: str | None, query_token: str | None = None) -> Principal:
        if self.open:
            return Principal("local", "admin", None)
        token = query_token
        if header and header.lower().startswith("bearer "):
            token = header[7:].strip()
        if not token:
            raise ApiError(401, "authentication required", "send Authorization: Bearer <token>")
        given = token.encode()
        found = None
        for value, principal in self._tokens:
            if hmac.compare_digest(value, given):
                found = principal
        if found is None:
            raise ApiError(401, "invalid token")
        return found


# ------------------------------------------------------------------------- dependencies
# app.state is untyped: these are the only places that read it.
def _gateway(conn: HTTPConnection) -> Gateway:
    return conn.app.state.gateway  # type: ignore[no-any-return]


def _auth(conn: HTTPConnection) -> Auth:
    return conn.app.state.auth  # type: ignore[no-any-return]


def _principal(conn: HTTPConnection) -> Principal:
    return _auth(conn).principal(conn.headers.get("authorization"))


def refusal(conn: HTTPConnection) -> ApiError | None:
    """The error the caller of `conn` would get from `PrincipalDep` (401), or None; for
    refusals decided before a route runs (an oversized body)."""
    auth: Auth | None = getattr(conn.app.state, "auth", None)
    if auth is None:  # not started yet: the route will answer
        return None
    try:
        auth.principal(conn.headers.get("authorization"))
    except ApiError as exc:
        return exc
    return None


def _live_caller(conn: HTTPConnection) -> Principal | None:
    # A browser's WebSocket cannot send headers: the token may come in the address. A refusal
    # is None, not an error: the feed answers it with close code 4401, not an HTTP body.
    try:
        return _auth(conn).principal(
            conn.headers.get("authorization"), conn.query_params.get("token")
        )
    except ApiError:
        return None


GatewayDep = Annotated[Gateway, Depends(_gateway)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
LiveCallerDep = Annotated[Principal | None, Depends(_live_caller)]


# ------------------------------------------------------------------------------- checks
def require_act(who: Principal, site: str, what: str = "act on site") -> None:
    """403 unless `who` may act on `site`; `what` words the refusal ("act on site")."""
    if not who.may_act(site):
        raise ApiError(403, "not allowed", f"{who.name} may not {what} {site}")


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
