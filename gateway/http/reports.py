"""`GET /api/reports/daily`."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gateway.report.model import XLSX_MIME, DailyReport, PeriodNotStarted, UnknownSite
from gateway.report.period import latest_report_day
from gateway.report.reader import build_daily_report
from gateway.report.render_html import render_html
from gateway.report.render_json import report_json
from gateway.report.render_xlsx import render_xlsx

if TYPE_CHECKING:
    from gateway.app.supervisor import Gateway


def _error(status: int, error: str, detail: Any = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _content_disposition(report: DailyReport, ext: str) -> str:
    ascii_name = f"{report.stem}.{ext}"
    utf8_name = quote(f"{report.title.replace(' ', '_')}.{ext}")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"


def register_report_routes(app: FastAPI) -> None:
    """`GET /api/reports/daily?date=YYYY-MM-DD&site=&format=json|html|xlsx`.

    Default date: the latest complete period. A duty token reads only its sites; the
    county report (no `site`) needs a token that reads every site (admin, bureau).
    """
    # Imported here: gateway.http.app imports this module to call this function.
    from gateway.http.app import ApiError, Principal, _principal

    @app.get("/api/reports/daily", response_model=None)
    async def daily_report(
        request: Request,
        day_text: str | None = Query(None, alias="date", description="YYYY-MM-DD"),
        site: str | None = None,
        fmt: str = Query("json", alias="format", description="json, html or xlsx"),
    ) -> Response:
        try:
            who: Principal = _principal(request)
        except ApiError as exc:
            return _error(exc.status, exc.error, exc.detail)
        gw: Gateway = request.app.state.gateway
        now = gw.clock()
        tz = ZoneInfo(gw.config.gateway.timezone)
        if fmt not in ("json", "html", "xlsx"):
            return _error(422, "invalid request", "format: one of json, html, xlsx")
        if day_text is None:
            day = latest_report_day(now, gw.config.report.time, tz)
        else:
            parsed = _parse_day(day_text)
            if parsed is None:
                return _error(
                    422, "invalid request", f"date: expected YYYY-MM-DD, got {day_text!r}"
                )
            day = parsed
        if site is not None:
            if site not in gw.inventory.sites or not who.may_read(site):
                return _error(404, "unknown site", site)
        elif who.sites is not None:
            return _error(
                403, "not allowed", f"{who.name} may read only some sites: ask for one with ?site="
            )
        try:
            report = await build_daily_report(
                gw.store, gw.config, gw.inventory, gw.engine.status, day, site, now
            )
        except PeriodNotStarted as exc:
            return _error(422, "invalid request", f"date: {exc}")
        except UnknownSite:
            return _error(404, "unknown site", site)
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
