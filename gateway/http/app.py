"""HTTP API (DESIGN section 8). Thin: every decision is the alarm path's or the book's.

`create_api(gateway)` serves a gateway that is already running (tests, demo);
`build_app(config)` makes an app whose lifespan starts and stops the gateway (`run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.alarms.actions import CommandNotApplicable
from gateway.alarms.book import AlarmNotFound, AlarmState, Disposition, TransitionRefused
from gateway.app.supervisor import Gateway
from gateway.config.inventory import AmbiguousDevice, InstalledDevice
from gateway.config.schema import GatewayConfig
from gateway.http.reports import register_report_routes
from gateway.live.hub import Subscriber, SubscriberTooSlow
from gateway.notify.worker import Maintenance
from gateway.overview.queries import register_overview_routes
from rules.model import CommandKind

MAX_LIMIT = 1000
CONSOLE_DIR = (
    Path(__file__).parent.parent / "web" / "console"
)  # the duty-room console: static files


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AckBody(_Body):
    by: str = Field(min_length=1, max_length=64)
    note: str = Field("", max_length=2000)


class CloseBody(_Body):
    by: str = Field(min_length=1, max_length=64)
    disposition: Disposition
    note: str = Field("", max_length=2000)


MAX_MAINTENANCE_S = 7 * 24 * 3600


class MaintenanceBody(_Body):
    by: str = Field(min_length=1, max_length=64)
    until: str | None = None  # ISO 8601 with offset
    minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    note: str = Field("", max_length=2000)
    site: str | None = None


def _maintenance_json(gw: Gateway, m: Maintenance) -> dict[str, Any]:
    return {
        "site": m.site,
        "device": m.device,
        "until": gw.clockface.iso(m.until),
        "by": m.by,
        "note": m.note,
    }


class CommandBody(_Body):
    by: str = Field(min_length=1, max_length=64)
    cmd: CommandKind
    site: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str  # duty | admin | bureau
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


def create_api(gw: Gateway, lifespan: Any = None) -> FastAPI:
    app = FastAPI(
        title="Safety gateway API",
        version="1",
        description="Alarms, devices and commands of the safety-monitoring gateway.",
        lifespan=lifespan,
    )
    if gw is not None:
        app.state.gateway = gw
        app.state.auth = Auth(gw.config)
    _install_error_handlers(app)
    _install_routes(app)
    register_report_routes(app)
    register_overview_routes(app)
    # The console is plain files (no build step); it talks to the API like any client.
    app.mount("/console", _ConsoleFiles(directory=CONSOLE_DIR), name="console")
    return app


class _ConsoleFiles(StaticFiles):
    """Static files that the browser revalidates (ETag) on every load: after an upgrade,
    a reload never mixes an old script with a new page."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "no-cache"
        return response


def build_app(
    config: GatewayConfig, on_started: Callable[[], None] = lambda: None, **gateway_kwargs: Any
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Gateway(config, **gateway_kwargs) as gw:
            app.state.gateway = gw
            app.state.auth = Auth(config)
            on_started()
            yield

    return create_api(None, lifespan=lifespan)  # type: ignore[arg-type]


def _gw(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


def _principal(request: Request) -> Principal:
    auth: Auth = request.app.state.auth
    return auth.principal(request.headers.get("authorization"))


GatewayDep = Annotated[Gateway, Depends(_gw)]
PrincipalDep = Annotated[Principal, Depends(_principal)]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "detail": None}, status_code=exc.status_code)


def _parse_time(raw: str | None, name: str) -> float | None:
    if raw is None:
        return None
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "invalid request", f"{name}: not an ISO 8601 time: {raw!r}") from None
    if dt.tzinfo is None:
        raise ApiError(
            422, "invalid request", f"{name}: give a UTC offset, e.g. 2026-11-24T08:00+08:00"
        )
    return dt.timestamp()


def _split(raw: str | None) -> list[str]:
    return [p for p in (raw or "").split(",") if p]


def _require_authority(gw: Gateway, site: str) -> None:
    if not gw.authority.decides(site):
        raise ApiError(
            409,
            f"site {site} is served by its edge gateway",
            "acknowledge, close and command there; this gateway only observes it",
        )


def _device(gw: Gateway, device_id: str, site: str | None, who: Principal) -> InstalledDevice:
    try:
        installed = gw.inventory.resolve(device_id, site)
    except AmbiguousDevice as exc:
        raise ApiError(
            400, str(exc), {"sites": exc.sites, "hint": "add ?site= or a site field"}
        ) from None
    if installed is None or not who.may_read(installed.ref.site):
        raise ApiError(404, "unknown device", device_id)
    return installed


def _install_routes(app: FastAPI) -> None:  # noqa: PLR0915 - one place lists the whole API
    @app.get("/api/health")
    async def health(gw: GatewayDep) -> dict[str, Any]:
        return gw.health()

    @app.get("/api/sites")
    async def sites(gw: GatewayDep, who: PrincipalDep) -> list[dict[str, Any]]:
        open_by_site: dict[str, int] = {}
        for a in gw.book.open_alarms():
            open_by_site[a.site] = open_by_site.get(a.site, 0) + 1
        out = []
        for site in gw.config.sites:
            if not who.may_read(site.id):
                continue
            out.append(
                {
                    "id": site.id,
                    "name": site.name,
                    "kind": site.kind.value,
                    "address": site.address,
                    "contacts": [
                        {"name": c.name, "role": c.role.value, "phone": c.phone}
                        for c in site.contacts
                    ],
                    "devices": len(site.devices),
                    "open_alarms": open_by_site.get(site.id, 0),
                }
            )
        return out

    @app.get("/api/devices")
    async def devices(
        gw: GatewayDep, who: PrincipalDep, site: str | None = None
    ) -> list[dict[str, Any]]:
        if site is not None and site not in gw.inventory.sites:
            raise ApiError(404, "unknown site", site)
        views = []
        for d in gw.inventory:
            if (site is None or d.ref.site == site) and who.may_read(d.ref.site):
                view = gw.device_view(d.ref)
                if view is not None:
                    views.append(view)
        return views

    @app.get("/api/devices/{device_id}")
    async def device(
        gw: GatewayDep, who: PrincipalDep, device_id: str, site: str | None = None
    ) -> dict[str, Any]:
        installed = _device(gw, device_id, site, who)
        view = gw.device_view(installed.ref)
        assert view is not None
        return view

    @app.get("/api/alarms")
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
        states = _split(state)
        for s in states:
            if s not in {x.value for x in AlarmState}:
                raise ApiError(422, "invalid request", f"state: unknown state {s!r}")
        types = _split(type)
        severities = _split(severity)
        t0, t1 = _parse_time(since, "since"), _parse_time(until, "until")
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

    @app.get("/api/alarms/{alarm_id}")
    async def alarm(gw: GatewayDep, who: PrincipalDep, alarm_id: str) -> dict[str, Any]:
        a = gw.book.get(alarm_id) or await gw.store.get(alarm_id)
        if a is None or not who.may_read(a.site):
            raise ApiError(404, "unknown alarm", alarm_id)
        return gw.alarm_view(a)

    async def _act(gw: Gateway, who: Principal, alarm_id: str) -> None:
        a = gw.book.get(alarm_id)
        if a is None:
            stored = await gw.store.get(alarm_id)
            if stored is None or not who.may_read(stored.site):
                raise ApiError(404, "unknown alarm", alarm_id)
            raise ApiError(409, "alarm is already closed", {"closed_by": stored.closed_by})
        if not who.may_act(a.site):
            raise ApiError(403, "not allowed", f"{who.name} may not act on site {a.site}")
        if not gw.authority.acts_on(a):
            _require_authority(gw, a.site)

    @app.post("/api/alarms/{alarm_id}/ack")
    async def ack(
        gw: GatewayDep, who: PrincipalDep, alarm_id: str, body: AckBody
    ) -> dict[str, Any]:
        await _act(gw, who, alarm_id)
        try:
            a = await gw.actions.ack(alarm_id, body.by, body.note or None)
        except TransitionRefused as exc:
            raise ApiError(409, str(exc)) from None
        except AlarmNotFound:
            raise ApiError(404, "unknown alarm", alarm_id) from None
        return gw.alarm_view(a)

    @app.post("/api/alarms/{alarm_id}/close")
    async def close(
        gw: GatewayDep, who: PrincipalDep, alarm_id: str, body: CloseBody
    ) -> dict[str, Any]:
        await _act(gw, who, alarm_id)
        try:
            a = await gw.actions.close(alarm_id, body.by, body.disposition, body.note or None)
        except TransitionRefused as exc:
            raise ApiError(409, str(exc)) from None
        except AlarmNotFound:
            raise ApiError(404, "unknown alarm", alarm_id) from None
        return gw.alarm_view(a)

    @app.post("/api/devices/{device_id}/commands", status_code=202)
    async def command(
        gw: GatewayDep,
        who: PrincipalDep,
        device_id: str,
        body: CommandBody,
        site: str | None = None,
    ) -> dict[str, Any]:
        installed = _device(gw, device_id, body.site or site, who)
        if not who.may_act(installed.ref.site):
            raise ApiError(
                403, "not allowed", f"{who.name} may not command devices of {installed.ref.site}"
            )
        _require_authority(gw, installed.ref.site)
        try:
            sent = gw.actions.command(installed, body.cmd, body.by)
        except CommandNotApplicable as exc:
            raise ApiError(400, str(exc)) from None
        except TransitionRefused as exc:
            raise ApiError(409, str(exc)) from None
        return {
            "id": sent.id,
            "site": sent.ref.site,
            "device": sent.ref.device,
            "cmd": sent.cmd.value,
            "requested_by": sent.requested_by,
            "sent_at": gw.clockface.iso(sent.sent_at),
        }

    @app.websocket("/api/live")
    async def live(ws: WebSocket) -> None:
        gw: Gateway = ws.app.state.gateway
        auth: Auth = ws.app.state.auth
        try:
            who = auth.principal(ws.headers.get("authorization"), ws.query_params.get("token"))
        except ApiError:
            await ws.close(code=4401)
            return
        await ws.accept()
        sub = gw.live.subscribe(who.sites)
        # Two halves: one sends what the hub queues, one listens so that a browser that
        # went away is noticed at once (and its subscription dropped), not at the next alarm.
        sender = asyncio.create_task(_send_live(ws, sub, _snapshot(gw, who)))
        listener = asyncio.create_task(_drain_client(ws))
        try:
            await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gw.live.unsubscribe(sub)
            for task in (sender, listener):
                task.cancel()
            await asyncio.gather(sender, listener, return_exceptions=True)

    @app.put("/api/devices/{device_id}/maintenance")
    async def maintenance_on(
        gw: GatewayDep,
        who: PrincipalDep,
        device_id: str,
        body: MaintenanceBody,
        site: str | None = None,
    ) -> dict[str, Any]:
        installed = _device(gw, device_id, body.site or site, who)
        if not who.may_act(installed.ref.site):
            raise ApiError(
                403, "not allowed", f"{who.name} may not act on site {installed.ref.site}"
            )
        _require_authority(gw, installed.ref.site)
        now = gw.clock()
        if (body.until is None) == (body.minutes is None):
            raise ApiError(422, "invalid request", "give exactly one of until or minutes")
        until = (
            now + body.minutes * 60
            if body.minutes is not None
            else _parse_time(body.until, "until")
        )
        assert until is not None
        if not now < until <= now + MAX_MAINTENANCE_S:
            raise ApiError(422, "invalid request", "until must be in the future and within 7 days")
        m = Maintenance(installed.ref.site, installed.ref.device, until, body.by, body.note or None)
        await gw.notifications.set_maintenance(m)
        return _maintenance_json(gw, m)

    @app.delete("/api/devices/{device_id}/maintenance")
    async def maintenance_off(
        gw: GatewayDep, who: PrincipalDep, device_id: str, site: str | None = None
    ) -> dict[str, Any]:
        installed = _device(gw, device_id, site, who)
        if not who.may_act(installed.ref.site):
            raise ApiError(
                403, "not allowed", f"{who.name} may not act on site {installed.ref.site}"
            )
        _require_authority(gw, installed.ref.site)
        cleared = await gw.notifications.clear_maintenance(installed.ref.site, installed.ref.device)
        return {"site": installed.ref.site, "device": installed.ref.device, "cleared": cleared}

    @app.get("/api/maintenance")
    async def maintenance_list(gw: GatewayDep, who: PrincipalDep) -> list[dict[str, Any]]:
        now = gw.clock()
        return [
            _maintenance_json(gw, m)
            for m in gw.notifications.maintenance.values()
            if who.may_read(m.site) and m.until > now
        ]

    @app.get("/metrics")
    async def metrics(gw: GatewayDep) -> Response:
        return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        # no-cache: after an upgrade the duty room gets the new console on its next reload
        return FileResponse(CONSOLE_DIR / "index.html", headers={"cache-control": "no-cache"})


async def _send_live(ws: WebSocket, sub: Subscriber, snapshot: dict[str, Any]) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.send_json(snapshot)
        while True:
            try:
                batch = await sub.next()
            except SubscriberTooSlow:
                await ws.close(code=4408, reason="too slow: reconnect for a fresh snapshot")
                return
            for message in batch:
                await ws.send_text(orjson.dumps(message).decode())
                await asyncio.sleep(0)  # one message per turn: the loop is shared


async def _drain_client(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return


def _snapshot(gw: Gateway, who: Principal) -> dict[str, Any]:
    alarms = [
        gw.alarm_view(a, timeline=False) for a in gw.book.open_alarms() if who.may_read(a.site)
    ]
    devices = [
        v
        for ref in gw.inventory.devices
        if who.may_read(ref.site) and (v := gw.device_view(ref)) is not None
    ]
    return {"kind": "snapshot", "alarms": alarms, "devices": devices}
