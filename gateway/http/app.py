"""The HTTP API's assembly (DESIGN section 8). Thin: every decision is the alarm path's or the
book's, every route is in the module of its resource.

`create_api(gateway)` serves a gateway that is already running (tests, demo);
`build_app(config)` makes an app whose lifespan starts and stops the gateway (`run`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from gateway.app.supervisor import Gateway
from gateway.config.schema import GatewayConfig
from gateway.http import (
    alarms,
    commands,
    devices,
    duty,
    hazards,
    health,
    incidents,
    live,
    login,
    maintenance,
    people,
    phone,
    reports,
    sites,
)
from gateway.http import audit as audit_trail
from gateway.http import static as static_files
from gateway.http.auth import Auth
from gateway.http.errors import install_error_handlers
from gateway.http.limits import BodyLimit
from gateway.http.overview import register_overview_routes
from gateway.http.static import CONSOLE_DIR, LOGIN_DIR, SHARED_DIR, NoCacheFiles
from gateway.http.tls import StrictTransportSecurity

_ROUTERS = (
    health.router,
    sites.router,
    devices.router,
    alarms.router,
    commands.router,
    live.router,
    maintenance.router,
    static_files.router,
    reports.router,
    login.router,
    people.router,
    audit_trail.router,
    phone.router,
    hazards.router,
    incidents.router,
    duty.router,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_api(gw: Gateway | None, lifespan: Lifespan | None = None) -> FastAPI:
    """The app. Without a gateway, `lifespan` must put one (and its `Auth`) on app.state."""
    app = FastAPI(
        title="Safety gateway API",
        version="1",
        description="Alarms, devices and commands of the safety-monitoring gateway.",
        lifespan=lifespan,
        docs_url=None,  # served by gateway.http.health, behind auth when configured
        redoc_url=None,
        openapi_url=None,
    )
    if gw is not None:
        app.state.gateway = gw
        app.state.auth = Auth(gw.config, gw.people, gw.clock)
    install_error_handlers(app)
    app.add_middleware(BodyLimit)  # before anything reads a body, 413 (or 401)
    app.add_middleware(StrictTransportSecurity)  # HSTS on what is served over TLS
    for router in _ROUTERS:
        app.include_router(router)
    register_overview_routes(app)
    health.add_docs_routes(app)
    # The pages are plain files (no build step); they talk to the API like any client.
    app.mount("/console", NoCacheFiles(directory=CONSOLE_DIR), name="console")
    app.mount("/static/shared", NoCacheFiles(directory=SHARED_DIR), name="shared")
    app.mount("/login/assets", NoCacheFiles(directory=LOGIN_DIR), name="login")
    return app


def build_app(
    config: GatewayConfig, on_started: Callable[[], None] = lambda: None, **gateway_kwargs: Any
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Gateway(config, **gateway_kwargs) as gw:
            app.state.gateway = gw
            app.state.auth = Auth(config, gw.people, gw.clock)
            on_started()
            yield

    app = create_api(None, lifespan=lifespan)
    return app
