"""`GET /api/audit?since=&until=&site=&actor=&action=&limit=&format=json|xlsx`: the audit
trail (`gateway.audit`), newest first.

Admins read every row; bureau staff and leaders only the rows of sites they may read (rows
about no site, such as logins and reloads, are admins' alone); anyone else is refused. A
site the caller may not read is unknown (404), as everywhere in the API.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from openpyxl import Workbook

from gateway.audit import (
    AuditRecord,
    action_label,
    result_label,
    role_label,
)
from gateway.config.clockface import Clockface
from gateway.http.auth import GatewayDep, PrincipalDep
from gateway.http.errors import ApiError
from gateway.http.params import parse_time
from gateway.report.model import XLSX_MIME
from gateway.report.render_xlsx import write_table

log = logging.getLogger(__name__)
router = APIRouter()

# `Principal.role` is a Literal that the accounts work widens; compared as text here.
AUDIT_READERS: Final[frozenset[str]] = frozenset({"admin", "bureau", "bureau_leader"})
SITE_BOUND: Final[frozenset[str]] = frozenset({"bureau", "bureau_leader"})
XLSX_HEADERS: Final = (
    "序号", "时间", "人员", "姓名", "角色", "来源地址", "操作", "单位", "对象", "结果", "详情",
)  # fmt: skip


@router.get("/api/audit", response_model=None)
async def audit_trail(
    gw: GatewayDep,
    who: PrincipalDep,
    since: str | None = Query(None, description="ISO 8601 with offset; at or after"),
    until: str | None = Query(None, description="ISO 8601 with offset; before"),
    site: str | None = None,
    actor: str | None = None,
    action: str | None = Query(None, description='prefix, e.g. "alarm."'),
    limit: int = Query(500, ge=1, le=10_000),
    fmt: str = Query("json", alias="format", description="json or xlsx"),
) -> Response:
    if who.role not in AUDIT_READERS:
        raise ApiError(403, "not allowed", f"{who.name} may not read the audit trail")
    if fmt not in ("json", "xlsx"):
        raise ApiError(422, "invalid request", "format: one of json, xlsx")
    start, end = parse_time(since, "since"), parse_time(until, "until")
    sites: list[str] | None
    if who.role == "admin" and who.sites is None:
        sites = None if site is None else [site]
    else:
        readable = [s for s in gw.inventory.sites if who.may_read(s)]
        if site is not None and site not in readable:
            raise ApiError(404, "unknown site", site)
        sites = readable if site is None else [site]
    rows = await gw.audit.query(
        since=start, until=end, sites=sites, actor=actor, action=action, limit=limit
    )
    if fmt == "xlsx":
        return Response(
            audit_xlsx(rows, gw.clockface),
            media_type=XLSX_MIME,
            headers={"content-disposition": 'attachment; filename="audit.xlsx"'},
        )
    return JSONResponse(
        {"entries": [_json(r, gw.clockface) for r in rows], "truncated": len(rows) == limit}
    )


def _json(r: AuditRecord, clock: Clockface) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "at": clock.iso(r.at),
        "actor": r.actor,
        "actor_name": r.actor_name,
        "role": r.role,
        "source": r.source,
        "action": r.action,
        "site": r.site,
        "target": r.target,
        "result": r.result,
        "detail": dict(r.detail) if r.detail is not None else None,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }


def audit_xlsx(rows: list[AuditRecord], clock: Clockface) -> bytes:
    """One sheet, 审计日志, in the report's house style; times in the gateway's zone."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "审计日志"
    write_table(
        ws,
        XLSX_HEADERS,
        [
            [
                r.seq,
                _local(r.at, clock),
                r.actor,
                r.actor_name,
                role_label(r.role),
                r.source,
                action_label(r.action),
                r.site,
                r.target,
                result_label(r.result),
                _detail_text(r),
            ]
            for r in rows
        ],
    )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _local(ts: float, clock: Clockface) -> datetime:
    """Excel has no time zones: the gateway's local time."""
    return datetime.fromtimestamp(ts, clock.zone).replace(tzinfo=None, microsecond=0)


def _detail_text(r: AuditRecord) -> str | None:
    if not r.detail:
        return None
    return "；".join(f"{k}: {v}" for k, v in r.detail.items())
