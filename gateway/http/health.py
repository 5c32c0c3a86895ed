"""`GET /api/health` (the gateway's own health, open to every caller) and `GET /metrics`
(Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.http.auth import GatewayDep

router = APIRouter()


@router.get("/api/health")
async def health(gw: GatewayDep) -> dict[str, Any]:
    return gw.health()


@router.get("/metrics")
async def metrics(gw: GatewayDep) -> Response:
    return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")
