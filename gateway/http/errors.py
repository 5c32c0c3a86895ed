"""The API's error body (DESIGN section 8): every 4xx is JSON `{"error": ..., "detail": ...}`,
and so is the 500 of an action the store refused for good.

Owns `ApiError`, which a route raises to answer with that body, and the handlers that give
FastAPI's own refusals (validation, unknown path, wrong method) the same shape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.alarms.store import PoisonWrite
from gateway.storage.owned import DatabaseUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


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


async def ask_database(fn: Callable[..., T], *args: Any, unavailable: str, **kwargs: Any) -> T:
    """A call to the owner of a database beside the alarm path, off the event loop; one that
    cannot answer (not opened at start, a broken disk) is the API's 503 with `unavailable` as
    its error, never a 500: the alarms and shut-off go on without it."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except DatabaseUnavailable:
        log.exception("%s", unavailable)
        raise ApiError(503, unavailable, "see /api/health") from None
