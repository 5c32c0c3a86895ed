"""Logging in to the pages, in a real browser (Debian's chromium, driven by Playwright).

A gateway with accounts (written before it starts, as `safety-gateway user add` does): the
pages send a person without a session to the login page and back; the console names who is
logged in and acts as them; logging out ends the session; failures lock the account; a
session ended while alarms are open leaves the console shouting, not on a login form.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from gateway.config.loading import parse_config
from gateway.config.schema import GatewayConfig
from gateway.http.app import create_api
from gateway.http.static import LOGIN_DIR
from gateway.people.secrets import digest
from tests.conftest import (
    Mosquitto,
    Probe,
    RunningGateway,
    free_port,
    running_gateway,
    served,
    site_config,
)
from tests.support.accounts import BUREAU, DUTY, add_accounts, session_cookie, submit_login
from tests.support.browser import Chromium, save_screenshot

WRONG = "not-the-password-1"


@contextlib.asynccontextmanager
async def gateway_with_accounts(
    tmp_path: Path, broker: Mosquitto
) -> AsyncIterator[tuple[RunningGateway, str]]:
    data_dir = tmp_path / "data"
    add_accounts(data_dir, DUTY, BUREAU)
    config: GatewayConfig = parse_config(site_config(data_dir, broker.port))
    port = free_port()
    async with running_gateway(config) as rg, served(create_api(rg.gw), port):
        yield rg, f"http://127.0.0.1:{port}"


async def page_state(page: Page, name: str) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(f"() => ({{...(window.{name} || {{}})}})")
    return state


async def wait_state(page: Page, name: str, timeout: float = 10.0, **expected: Any) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = await page_state(page, name)
        if all(state.get(k) == v for k, v in expected.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never reached {expected}; state: {state}")
        await asyncio.sleep(0.05)


def test_login_assets_are_all_local() -> None:
    """No CDN, no external URL: a duty room may have no internet."""
    assert {p.name for p in LOGIN_DIR.iterdir()} == {"index.html", "login.js", "login.css"}
    for path in LOGIN_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I)
        assert not external, f"{path.name} refers to {external}"


async def test_login_page_and_its_assets_are_served_uncached() -> None:
    transport = httpx.ASGITransport(app=create_api(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        r = await client.get("/login")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        refs = re.findall(r'(?:href|src)="(/(?:login|console)/[^"]+)"', r.text)
        assert "/login/assets/login.js" in refs and "/login/assets/login.css" in refs
        for ref in refs:
            asset = await client.get(ref)
            assert asset.status_code == 200, ref
            assert asset.headers["cache-control"] == "no-cache", ref


@pytest.mark.slow
async def test_log_in_acknowledge_as_oneself_and_log_out(
    tmp_path: Path, broker: Mosquitto, probe: Probe, chromium: Chromium
) -> None:
    async with (
        gateway_with_accounts(tmp_path, broker) as (_, base),
        chromium() as (
            page,
            errors,
        ),
    ):
        # No session: the console sends the person to log in, and remembers where from.
        await page.goto(f"{base}/")
        await page.wait_for_url(f"{base}/login?next=%2F")
        await expect(page.locator("#notice")).to_have_text("请登录后继续")
        save_screenshot(await page.screenshot(), tmp_path, "login.png")
        # A phone's width: nothing sticks out sideways.
        await page.set_viewport_size({"width": 360, "height": 740})
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        await expect(page.locator("#submit")).to_be_in_viewport()
        save_screenshot(await page.screenshot(), tmp_path, "login-360.png")
        await page.set_viewport_size({"width": 1280, "height": 800})

        await submit_login(page, DUTY.login, WRONG)
        await expect(page.locator("#error")).to_have_text("用户名或密码错误")
        await expect(page.locator("#password")).to_have_value("")
        await submit_login(page, DUTY.login, DUTY.password)
        await page.wait_for_url(f"{base}/")
        await expect(page.locator("#who-name")).to_have_text(DUTY.name)
        await expect(page.locator("#who-role")).to_have_text("值班员")
        await wait_state(page, "__consoleState", connected=True, person=DUTY.login)

        await probe.event("btn-lobby", "pressed")
        row = page.locator("#alarm-rows tr.alarm")
        await expect(row).to_have_count(1)
        alarm_id = await row.get_attribute("data-alarm-id")
        await row.locator("button[data-action=ack]").click()
        dialog = page.locator("#ack-dialog")
        await expect(dialog).to_be_visible()
        # Nobody types a name: the dialog says who acts.
        await expect(dialog.locator("#ack-by")).to_be_hidden()
        await expect(dialog.locator("#ack-actor")).to_have_text("操作人：王值班（值班员）")
        await dialog.locator("#ack-submit").click()
        await expect(dialog).to_be_hidden()
        await expect(row.locator(".c-state")).to_contain_text("已确认")

        cookie = await session_cookie(page)
        async with httpx.AsyncClient(base_url=base, cookies={"sg_session": cookie}) as api:
            alarm = (await api.get(f"/api/alarms/{alarm_id}")).json()
            assert alarm["acked_by"] == DUTY.actor
            # The session rides along on a request another site makes: refused.
            close = {"disposition": "test", "note": "forged"}
            for origin in ("http://evil.example", None):
                headers = {"origin": origin} if origin else {}
                r = await api.post(f"/api/alarms/{alarm_id}/close", json=close, headers=headers)
                assert r.status_code == 403, r.text
            assert (await api.get(f"/api/alarms/{alarm_id}")).json()["state"] != "closed"

            # 退出登录: back to the login page, and the old cookie is worth nothing.
            await page.locator("#logout").click()
            await page.wait_for_url(f"{base}/login")
            assert (await api.get("/api/me")).status_code == 401
            assert await page.context.cookies() == []
        assert errors == [], errors


@pytest.mark.slow
async def test_bureau_lands_on_its_overview_and_failures_lock_an_account(
    tmp_path: Path, broker: Mosquitto, chromium: Chromium, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The slowing down is tested through the API (tests/gateway/people); here, the page.
    monkeypatch.setattr("gateway.people.throttle.MAX_DELAY_S", 0.0)
    async with (
        gateway_with_accounts(tmp_path, broker) as (_, base),
        chromium() as (
            page,
            errors,
        ),
    ):
        # The bureau's staff are sent to their overview, not to the duty console.
        await page.goto(f"{base}/")
        await page.wait_for_url(f"{base}/login?next=%2F")
        await submit_login(page, BUREAU.login, BUREAU.password)
        await page.wait_for_url(f"{base}/bureau")
        await expect(page.locator("#who-name")).to_have_text(BUREAU.name)
        await expect(page.locator("#who-role")).to_have_text("民政局")
        await wait_state(page, "__bureauState", pollOk=True, sites=1)
        await page.locator("#logout").click()
        await page.wait_for_url(f"{base}/login")

        # A `next` that leads off the gateway, or round in a circle, is ignored.
        for bad in ("//evil.example/x", "/%5Cevil.example/x", "https://evil.example/", "/login"):
            await page.goto(f"{base}/login?next={bad}")
            await submit_login(page, BUREAU.login, BUREAU.password)
            await page.wait_for_url(f"{base}/bureau")
            await page.locator("#logout").click()
            await page.wait_for_url(f"{base}/login")

        # Five wrong passwords lock the account: then even the right one is refused a while.
        for attempt in range(1, 6):
            await submit_login(page, DUTY.login, WRONG)
            await wait_state(page, "__loginState", attempts=attempt, status=401)
            await expect(page.locator("#error")).to_have_text("用户名或密码错误")
        await submit_login(page, DUTY.login, DUTY.password)
        await wait_state(page, "__loginState", attempts=6, status=429)
        await expect(page.locator("#error")).to_have_text(
            re.compile(r"^登录失败次数过多，请 1[56] 分钟后再试$")
        )
        save_screenshot(await page.screenshot(), tmp_path, "login-locked.png")
        assert page.url == f"{base}/login"
        async with httpx.AsyncClient(base_url=base) as api:
            r = await api.post("/api/login", json={"login": DUTY.login, "password": DUTY.password})
            assert r.status_code == 429
            assert 0 < int(r.headers["retry-after"]) <= 15 * 60 + 1
        assert errors == [], errors


@pytest.mark.slow
async def test_console_with_open_alarms_shouts_when_its_session_ends(
    tmp_path: Path, broker: Mosquitto, probe: Probe, chromium: Chromium
) -> None:
    """An administrator ends the session (or the password changes) mid-shift while an alarm
    is unacknowledged: the console stays, sounding, with a red banner, and does not turn
    quietly into a login form."""
    async with (
        gateway_with_accounts(tmp_path, broker) as (rg, base),
        chromium() as (
            page,
            errors,
        ),
    ):
        await page.goto(f"{base}/login")
        await submit_login(page, DUTY.login, DUTY.password)
        await page.wait_for_url(f"{base}/")
        await wait_state(page, "__consoleState", connected=True, person=DUTY.login)
        await probe.event("btn-lobby", "pressed")
        await expect(page.locator("#alarm-rows tr.alarm")).to_have_count(1)
        await page.locator("#sound-banner").click()
        await wait_state(page, "__consoleState", audioArmed=True, sounding=True)

        cookie = await session_cookie(page)
        await asyncio.to_thread(rg.gw.people.end_session, digest(cookie))
        # The duty officer acknowledges: refused (the page would also notice within the 10 s
        # of its own check of who it is).
        await page.locator("#alarm-rows tr.alarm button[data-action=ack]").click()
        await page.locator("#ack-dialog #ack-submit").click()
        banner = page.locator("#logged-out")
        await expect(banner).to_be_visible()
        dialog = page.locator("#ack-dialog")
        await expect(dialog).to_contain_text("登录已失效，请重新登录")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(banner).to_contain_text("已退出登录，报警不再更新 — 请重新登录")
        await wait_state(page, "__consoleState", loggedOut=True, sounding=True, unackedCritical=1)
        assert page.url == f"{base}/"
        await expect(page.locator("#alarm-rows tr.alarm")).to_have_count(1)
        await expect(page.locator("#login-again")).to_have_attribute("href", "/login?next=%2F")
        save_screenshot(await page.screenshot(), tmp_path, "console-logged-out.png")

        # Logging in again brings the console back, alarms and all.
        await page.locator("#login-again").click()
        await page.wait_for_url(f"{base}/login?next=%2F")
        await submit_login(page, DUTY.login, DUTY.password)
        await page.wait_for_url(f"{base}/")
        await wait_state(page, "__consoleState", connected=True, loggedOut=False, alarms=1)
        await expect(page.locator("#logged-out")).to_be_hidden()
        assert errors == [], errors
