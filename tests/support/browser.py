"""Debian's chromium driven by Playwright, and the API on a real uvicorn server for it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]


CHROMIUM = "/usr/bin/chromium"


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


ARTIFACTS = REPO_ROOT / "artifacts"


UI_TIMEOUT_MS = 10_000

DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
# A small Android phone: what the mobile acknowledgement page must fit.
PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}


Chromium = Callable[..., contextlib.AbstractAsyncContextManager[tuple[Page, list[str]]]]


@contextlib.asynccontextmanager
async def chromium_page(
    phone: bool = False, ignore_https_errors: bool = False
) -> AsyncIterator[tuple[Page, list[str]]]:
    """A fresh headless chromium page (desktop, or a phone's) and the list that collects
    uncaught page errors. `ignore_https_errors`: for a server whose certificate a test's own
    CA signed (Chromium cannot be given a CA to trust as easily as httpx)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the console tests need Debian's chromium "
            "(`make test` installs it; or `apt-get install chromium`)"
        )
    async with async_playwright() as pw:
        browser: Browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(
                **(PHONE if phone else DESKTOP),
                locale="zh-CN",
                timezone_id="UTC",
                ignore_https_errors=ignore_https_errors,
            )
            page = await context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
        finally:
            await browser.close()


def save_screenshot(png: bytes, tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(png)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)
