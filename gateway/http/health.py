"""`GET /api/health` (a public liveness part for anyone, the detail for signed-in callers),
`GET /metrics` (Prometheus text) and the API's own description (`/docs`, `/openapi.json`);
whether the last two need a signed-in caller is configuration (`http.public_metrics`,
`http.public_docs`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.requests import Request

from gateway.http.auth import GatewayDep, auth_of
from gateway.http.errors import ApiError

router = APIRouter()


@router.get("/api/health")
async def health(gw: GatewayDep, request: Request) -> dict[str, Any]:
    report = gw.health()
    try:
        await auth_of(request).principal(request)
    except ApiError:
        # Enough for a load balancer or a watchdog; the rest (broker, store, queues) is for
        # people who run the gateway.
        return {"status": report["status"], "gateway": report["gateway"], "detail": False}
    return report


async def _allowed(request: Request, public: bool) -> None:
    if not public:
        await auth_of(request).principal(request)  # 401 unless signed in


@router.get("/metrics")
async def metrics(gw: GatewayDep, request: Request) -> Response:
    await _allowed(request, gw.config.http.public_metrics)
    return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")


def add_docs_routes(app: FastAPI) -> None:
    """FastAPI's /docs and /openapi.json, behind the same check as the API when asked to."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(gw: GatewayDep, request: Request) -> JSONResponse:
        await _allowed(request, gw.config.http.public_docs)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(gw: GatewayDep, request: Request) -> HTMLResponse:
        await _allowed(request, gw.config.http.public_docs)
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)
