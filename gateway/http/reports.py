"""`GET /api/reports/daily?date=YYYY-MM-DD&site=&format=json|html|xlsx`: the daily report
(built by `gateway.report`) as JSON, HTML or an Excel workbook.

Default date: the latest complete period. A duty token reads only its sites; the county
report (no `site`) needs a token that reads every site (admin, bureau).
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gateway.http.auth import GatewayDep, PrincipalDep
from gateway.http.errors import ApiError
from gateway.report.model import XLSX_MIME, DailyReport, PeriodNotStarted, UnknownSite
from gateway.report.period import FIRST_DAY, LAST_DAY, day_in_range, latest_report_day
from gateway.report.reader import build_daily_report
from gateway.report.render_html import render_html
from gateway.report.render_json import report_json
from gateway.report.render_xlsx import render_xlsx

router = APIRouter()

# Days a report may be asked for: outside, the period's bounds would overflow (a 500).


def register_report_routes(app: FastAPI) -> None:
    """The report route on an app of one's own (`create_api` includes it already)."""
    app.include_router(router)


def _content_disposition(report: DailyReport, ext: str) -> str:
    ascii_name = f"{report.stem}.{ext}"
    utf8_name = quote(f"{report.title.replace(' ', '_')}.{ext}")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"


@router.get("/api/reports/daily", response_model=None)
async def daily_report(
    gw: GatewayDep,
    who: PrincipalDep,
    day_text: str | None = Query(None, alias="date", description="YYYY-MM-DD"),
    site: str | None = None,
    fmt: str = Query("json", alias="format", description="json, html or xlsx"),
) -> Response:
    now = gw.clock()
    tz = ZoneInfo(gw.config.gateway.timezone)
    if fmt not in ("json", "html", "xlsx"):
        raise ApiError(422, "invalid request", "format: one of json, html, xlsx")
    if day_text is None:
        day = latest_report_day(now, gw.config.report.time, tz)
    else:
        parsed = _parse_day(day_text)
        if parsed is None:
            raise ApiError(422, "invalid request", f"date: expected YYYY-MM-DD, got {day_text!r}")
        if not day_in_range(parsed):
            raise ApiError(
                422,
                "invalid request",
                f"date: out of range ({FIRST_DAY} to {LAST_DAY}): {day_text}",
            )
        day = parsed
    if site is not None:
        if site not in gw.inventory.sites or not who.may_read(site):
            raise ApiError(404, "unknown site", site)
    elif who.sites is not None:
        raise ApiError(
            403, "not allowed", f"{who.login} may read only some sites: ask for one with ?site="
        )
    try:
        report = await build_daily_report(
            gw.store, gw.config, gw.inventory, gw.engine.status, day, site, now
        )
    except PeriodNotStarted as exc:
        raise ApiError(422, "invalid request", f"date: {exc}") from None
    except UnknownSite:
        raise ApiError(404, "unknown site", site) from None
    if fmt == "html":
        return HTMLResponse(render_html(report))
    if fmt == "xlsx":
        return Response(
            render_xlsx(report),
            media_type=XLSX_MIME,
            headers={"content-disposition": _content_disposition(report, "xlsx")},
        )
    return JSONResponse(report_json(report))


def _parse_day(raw: str) -> date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None
