"""The API's error body (DESIGN section 8): every 4xx is JSON `{"error": ..., "detail": ...}`,
and so is the 500 of an action the store refused for good.

Owns `ApiError`, which a route raises to answer with that body, and the handlers that give
FastAPI's own refusals (validation, unknown path, wrong method) the same shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.alarms.store import PoisonWrite


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.error, "detail": exc.detail}, status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=422)

    @app.exception_handler(PoisonWrite)
    async def _not_stored(_: Request, exc: PoisonWrite) -> JSONResponse:
        # The store refused this one write for good (logged with the record, counted in
        # health): the person must know their action was not recorded.
        return JSONResponse(
            {"error": "the action could not be stored", "detail": str(exc)}, status_code=500
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "detail": None}, status_code=exc.status_code)
