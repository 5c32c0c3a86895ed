"""The duty-room console in a real browser (Debian's chromium, driven by Playwright).

Mosquitto, the gateway and a real uvicorn server run here; the test publishes MQTT as the
devices would and works the console as the duty officer does: sees the alarm, hears it,
acknowledges, closes, and watches the page find the gateway again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Page, expect

from gateway.config.loading import parse_config
from gateway.config.schema import GatewayConfig
from gateway.http.app import create_api
from gateway.http.static import CONSOLE_DIR, SHARED_DIR
from tests.conftest import (
    Mosquitto,
    Probe,
    RunningGateway,
    answer_valve,
    free_port,
    running_gateway,
    served,
    site_config,
)
from tests.support.accounts import DUTY, add_accounts, submit_login
from tests.support.browser import Chromium, save_screenshot

GAS_OFF_DELAY = {"defaults": {"gas_detector": {"gas_leak": {"off_delay": "0.5 s"}}}}


@contextlib.asynccontextmanager
async def gateway_served(config: GatewayConfig, port: int) -> AsyncIterator[RunningGateway]:
    async with running_gateway(config) as rg, served(create_api(rg.gw), port):
        yield rg


async def console_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("() => ({...window.__consoleState})")
    return state


async def wait_state(page: Page, what: str, timeout: float = 10.0, **expected: Any) -> None:
    """Wait until window.__consoleState has every expected value."""
    deadline = time.monotonic() + timeout
    while True:
        state = await console_state(page)
        if all(state.get(k) == v for k, v in expected.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"console never reached {what}: {expected}; state: {state}")
        await asyncio.sleep(0.05)


async def clock_shows_shanghai(page: Page) -> bool:
    clock = await page.locator("#clock").text_content() or ""
    if not re.fullmatch(r"\d\d:\d\d:\d\d", clock):
        return False
    h, m, s = map(int, clock.split(":"))
    t = datetime.now(ZoneInfo("Asia/Shanghai"))
    drift = abs((h * 3600 + m * 60 + s) - (t.hour * 3600 + t.minute * 60 + t.second))
    return min(drift, 86400 - drift) < 5


async def until_async(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def test_console_assets_are_all_local() -> None:
    """No CDN, no external URL: a duty room may have no internet."""
    names = {p.name for p in CONSOLE_DIR.iterdir()}
    assert {"index.html", "console.js", "console.css"} <= names
    for path in CONSOLE_DIR.iterdir():
        text = path.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I)
        assert not external, f"{path.name} refers to {external}"


def test_shared_scripts_are_all_local() -> None:
    """The scripts the console and the bureau page share, and the vendored chart library
    (uPlot, whose banner comment names where it came from): no CDN either."""
    assert {p.name for p in SHARED_DIR.iterdir()} == {
        "common.js",
        "live.js",
        "session.js",
        "clock.js",
        "tiles.js",
        "vendor",
    }
    vendored = {p.name for p in (SHARED_DIR / "vendor" / "uplot").iterdir()}
    assert vendored == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for path in SHARED_DIR.rglob("*.*"):
        text = path.read_text(encoding="utf-8")
        text = text.replace("/*! https://github.com/leeoniya/uPlot (v1.6.32) */", "")
        external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I)
        assert not external, f"{path.name} refers to {external}"


async def test_console_page_and_what_it_links_to_are_served_uncached() -> None:
    """After an upgrade a reload must never mix an old script with a new page."""
    transport = httpx.ASGITransport(app=create_api(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        r = await client.get("/")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        refs = re.findall(r'(?:href|src)="(/(?:console|static)/[^"]+)"', r.text)
        assert "/static/shared/live.js" in refs and "/static/shared/common.js" in refs
        for ref in refs:
            asset = await client.get(ref)
            assert asset.status_code == 200, ref
            assert asset.headers["cache-control"] == "no-cache", ref
        assert (await client.get("/static/shared/nothing.js")).status_code == 404


@pytest.mark.slow
async def test_console_alarm_lifecycle(
    tmp_path: Path, broker: Mosquitto, probe: Probe, chromium: Chromium
) -> None:
    started = time.monotonic()
    config = parse_config(site_config(tmp_path / "data", broker.port, rules=GAS_OFF_DELAY))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with gateway_served(config, port) as rg, chromium() as (page, errors):
        await page.goto(f"{base}/")
        await wait_state(page, "connected", connected=True)
        await expect(page.locator("#conn-text")).to_have_text("已连接 · 实时")
        await expect(page.locator("#site-names")).to_have_text("城区幸福养老服务中心")
        await expect(page.locator("#sound-banner")).to_contain_text("点击启用声音报警")
        # No accounts: the local operator, nobody logged in to show.
        await wait_state(page, "the local operator", person="local")
        await expect(page.locator("#who")).to_be_hidden()
        # The browser is set to UTC; the clock shows the gateway's zone, like the alarm times.
        await until_async(lambda: clock_shows_shanghai(page), what="clock in the gateway's zone")

        await probe.telemetry("valve-kitchen", {"open": 1})
        await probe.telemetry("gas-kitchen", {"lel": 26.0})
        await answer_valve(probe)

        row = page.locator("#alarm-rows tr.alarm")
        await expect(row).to_have_count(1)
        await expect(row.locator(".c-type")).to_contain_text("燃气泄漏")
        await expect(row.locator(".c-sev")).to_have_text("紧急")
        await expect(row.locator(".c-state")).to_contain_text("未处理")
        await expect(row.locator(".c-value")).to_contain_text("26.0 %LEL")
        await expect(row.locator(".c-where")).to_contain_text("一楼厨房")
        await expect(row.locator(".c-where")).to_contain_text("城区幸福养老服务中心")
        await expect(row.locator(".c-valve")).to_have_text("已关闭")
        await expect(row.locator("button[data-action=close]")).to_be_disabled()
        alarm_id = await row.get_attribute("data-alarm-id")
        assert alarm_id

        # The device grid has the detector with its last value, and the closed valve.
        tile = page.locator('[data-device="xingfu/gas-kitchen"]')
        await expect(tile).to_contain_text("26.0 %LEL")
        await expect(tile).to_contain_text("在线")
        await expect(page.locator('[data-device="xingfu/valve-kitchen"]')).to_contain_text("已关闭")

        # Unacknowledged critical alarm: the flashing indicator, but no sound until armed.
        await expect(page.locator("#critical-flash")).to_be_visible()
        await wait_state(page, "one unacked critical", unackedCritical=1, audioArmed=False)
        assert (await console_state(page))["sounding"] is False
        save_screenshot(await page.screenshot(full_page=False), tmp_path, "console.png")

        await page.locator("#sound-banner").click()
        await wait_state(page, "sounding", audioArmed=True, sounding=True)
        await expect(page.locator("#sound-banner")).to_be_hidden()

        # Acknowledge: a name is required.
        await row.locator("button[data-action=ack]").click()
        dialog = page.locator("#ack-dialog")
        await expect(dialog).to_be_visible()
        await dialog.locator("#ack-by").fill("")
        await dialog.locator("#ack-submit").click()
        await expect(dialog.locator("#ack-error")).to_contain_text("请填写值班人员姓名")
        await dialog.locator("#ack-by").fill("王值班")
        await dialog.locator("#ack-note").fill("已通知后勤")
        # A critical alarm can be confirmed real here: its incident opens now (seed 003).
        await dialog.locator("#ack-real").check()
        await dialog.locator("#ack-submit").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#toast")).to_contain_text("已开启事件")
        [incident] = (await rg.api.get("/api/incidents")).json()
        assert incident["alarm_id"] == alarm_id and incident["phone_report"] is None
        await expect(row.locator(".c-state")).to_contain_text("已确认")
        await wait_state(page, "silent after ack", unackedCritical=0, sounding=False)
        await expect(page.locator("#critical-flash")).to_be_hidden()
        acked = (await rg.api.get(f"/api/alarms/{alarm_id}")).json()
        assert acked["acked_by"] == "王值班"
        assert await page.evaluate("localStorage.getItem('safety-console.operator')") == "王值班"

        # The gateway refuses to close a threshold alarm that is still active: the dialog says
        # so. (The button is disabled; here it is forced, as a stale page might have it.)
        await page.evaluate(
            """id => {
                const b = document.querySelector(
                    `tr[data-alarm-id="${id}"] button[data-action=close]`);
                b.disabled = false;
                b.click();
            }""",
            alarm_id,
        )
        close = page.locator("#close-dialog")
        await expect(close).to_be_visible()
        await expect(close.locator("#close-by")).to_have_value("王值班")
        await close.locator("#close-disposition").select_option("real")
        await close.locator("#close-submit").click()
        error = close.locator("#close-error")
        await expect(error).to_contain_text("409")
        await expect(error).to_contain_text("当前状态不允许此操作")
        await expect(error).to_contain_text("still active")
        save_screenshot(await page.screenshot(), tmp_path, "console-close-409.png")
        await close.locator("[data-cancel]").click()
        await expect(close).to_be_hidden()
        assert (await rg.api.get(f"/api/alarms/{alarm_id}")).json()["state"] == "active"

        # The gas goes: after the off-delay the alarm clears, and may now be closed.
        for _ in range(100):
            await probe.telemetry("gas-kitchen", {"lel": 1.0})
            if (await rg.api.get(f"/api/alarms/{alarm_id}")).json()["state"] == "cleared":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the gas alarm never cleared")
        await expect(row.locator(".c-state")).to_contain_text("已恢复")
        close_button = row.locator("button[data-action=close]")
        await expect(close_button).to_be_enabled()

        await close_button.click()
        await expect(close).to_be_visible()
        await expect(close.locator("#close-error")).to_be_hidden()
        await close.locator("#close-disposition").select_option("real")
        await close.locator("#close-note").fill("已开窗通风，检修燃气管道接口")
        await close.locator("#close-submit").click()
        await expect(close).to_be_hidden()
        await expect(page.locator("#alarm-rows tr.alarm")).to_have_count(0)
        await expect(page.locator("#no-alarms")).to_be_visible()
        await expect(page.locator("#recent-list li")).to_contain_text("王值班")

        closed = (await rg.api.get(f"/api/alarms/{alarm_id}")).json()
        assert closed["state"] == "closed"
        assert closed["disposition"] == "real"
        assert closed["closed_by"] == "王值班"
        assert closed["note"] == "已开窗通风，检修燃气管道接口"
        assert errors == [], errors
    print(f"console lifecycle in the browser: {time.monotonic() - started:.1f} s")


@pytest.mark.slow
async def test_console_reconnects_after_gateway_restart(
    tmp_path: Path,
    broker: Mosquitto,
    probe: Probe,
    chromium: Chromium,
) -> None:
    """The whole gateway stops and comes back (same port, same data dir): the page finds it
    again by itself and shows the open alarms from the new snapshot. With a duty officer
    logged in, whose session outlives the restart (the live feed and the API take the
    cookie)."""
    port = free_port()
    add_accounts(tmp_path / "data", DUTY)
    data = site_config(tmp_path / "data", broker.port, rules=GAS_OFF_DELAY)
    data["http"] = {"host": "127.0.0.1", "port": port}
    config = parse_config(data)
    base = f"http://127.0.0.1:{port}"
    async with chromium() as (page, errors):
        async with gateway_served(config, port) as rg:
            # Without a session the page sends the person to log in, and back afterwards.
            await page.goto(f"{base}/")
            await page.wait_for_url(f"{base}/login?next=%2F")
            await submit_login(page, DUTY.login, DUTY.password)
            await page.wait_for_url(f"{base}/")
            await wait_state(page, "connected", connected=True)
            await expect(page.locator("#site-names")).to_have_text("城区幸福养老服务中心")
            await probe.event("btn-lobby", "pressed")
            row = page.locator("#alarm-rows tr.alarm")
            await expect(row).to_have_count(1)
            await expect(row.locator(".c-type")).to_contain_text("一键报警")
            # latched: may be closed while active
            await expect(row.locator("button[data-action=close]")).to_be_enabled()
            assert rg.gw.live.subscribers == 1

        # Gateway down: the page says so, and keeps what it knew (marked as possibly stale).
        await wait_state(page, "disconnected", connected=False)
        await expect(page.locator("#offline-banner")).to_be_visible()
        await expect(page.locator("#conn-text")).to_have_text("连接中断，正在重连…")
        await expect(row).to_have_count(1)
        save_screenshot(await page.screenshot(), tmp_path, "console-offline.png")

        async with gateway_served(config, port):
            back_at = time.monotonic()
            await wait_state(page, "reconnected", timeout=20, connected=True, snapshots=2)
            reconnect_s = time.monotonic() - back_at
            await expect(page.locator("#offline-banner")).to_be_hidden()
            await expect(row).to_have_count(1)
            await expect(row.locator(".c-type")).to_contain_text("一键报警")
            await expect(row.locator(".c-state")).to_contain_text("未处理")
            # The new connection is live: a new alarm appears without reloading the page.
            await probe.telemetry("gas-kitchen", {"lel": 30.0})
            await expect(page.locator("#alarm-rows tr.alarm")).to_have_count(2)
            await expect(page.locator("#alarm-rows tr.alarm").first).to_contain_text("一键报警")
            await wait_state(page, "two unacked critical", unackedCritical=2)
        assert errors == [], errors
    print(f"console reconnected {reconnect_s:.1f} s after the gateway came back")


async def test_a_robots_link_marks_its_alarm(
    tmp_path: Path, broker: Mosquitto, probe: Probe, chromium: Chromium
) -> None:
    """DingTalk/WeCom messages link to `/#alarm=<id>`: the console shows that row, marked."""
    config = parse_config(site_config(tmp_path / "data", broker.port))
    port = free_port()
    async with gateway_served(config, port), chromium() as (page, errors):
        await probe.event("btn-lobby", "pressed")
        alarm = await probe.wait_for("xingfu/alarms", lambda m: m["type"] == "fire_button")
        await page.goto(f"http://127.0.0.1:{port}/#alarm={alarm['id']}")
        row = page.locator(f'tr[data-alarm-id="{alarm["id"]}"]')
        await expect(row).to_have_attribute("data-linked", "true")
        await expect(row).to_be_in_viewport()
        assert errors == []
