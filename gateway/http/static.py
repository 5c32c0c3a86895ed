"""The pages' files (`gateway/web/`): where they are, and how they are served.

Owns the one rule for them: the browser revalidates every file (ETag) on every load, so that
after an upgrade a reload never mixes an old script with a new page. The duty console is
`/` with its assets under `/console`, the scripts both pages load are under `/static/shared`,
the login page's under `/login/assets`;
the bureau page (`/bureau`) is served by the overview's routes with the same class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent.parent / "web"
CONSOLE_DIR = WEB_DIR / "console"  # the duty-room console
BUREAU_DIR = WEB_DIR / "bureau"  # the county bureau's overview page
SHARED_DIR = WEB_DIR / "shared"  # what both pages use: labels, clock, tiles, API, live feed
LOGIN_DIR = WEB_DIR / "login"  # the login page's assets (the page is gateway.http.login's)

NO_CACHE = {"cache-control": "no-cache"}

router = APIRouter()


class NoCacheFiles(StaticFiles):
    """Static files that the browser revalidates on every load."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(NO_CACHE)
        return response


def page(path: Path) -> FileResponse:
    """An HTML page, revalidated on every load like its assets."""
    return FileResponse(path, headers=NO_CACHE)


@router.get("/", include_in_schema=False)
async def console_page() -> FileResponse:
    return page(CONSOLE_DIR / "index.html")
