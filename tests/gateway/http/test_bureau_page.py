"""The bureau overview page in a real browser (Debian's chromium, driven by Playwright).

Mosquitto, the gateway and a real uvicorn server run here, as for the duty console; the test
publishes MQTT as the devices would and reads the page as the county bureau does: every site
with its figures, sorted by clicking headers, a site's devices and alarms on a click, and a
new alarm turning its site red within seconds (pushed by the live feed, not the 10 s poll).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from gateway.alarms.book import Alarm
from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.http.overview import register_overview_routes
from rules.model import AlarmType, DeviceRef
from tests.conftest import Mosquitto, Probe, answer_valve, free_port, running_gateway, served, until
from tests.support.accounts import BUREAU, add_accounts, session_cookie, submit_login
from tests.support.browser import Chromium, save_screenshot
from tests.support.overview import seed_history, two_sites

pytestmark = pytest.mark.slow


async def bureau_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("() => ({...(window.__bureauState || {})})")
    return state


async def wait_until(
    page: Page, what: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not predicate(state := await bureau_state(page)):
        if time.monotonic() > deadline:
            raise AssertionError(f"page never reached {what}; state: {state}")
        await asyncio.sleep(0.05)
    return state


async def wait_state(page: Page, what: str, timeout: float = 10.0, **expected: Any) -> None:
    """Wait until window.__bureauState has every expected value."""
    await wait_until(
        page,
        f"{what}: {expected}",
        lambda state: all(state.get(k) == v for k, v in expected.items()),
        timeout,
    )


async def order(page: Page) -> list[str]:
    rows = page.locator("#site-rows tr.site")
    return [await rows.nth(i).get_attribute("data-site") or "" for i in range(await rows.count())]


async def wait_order(page: Page, expected: list[str], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := await order(page)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"rows in order {got}, expected {expected}")
        await asyncio.sleep(0.05)


def _open(gw: Gateway, site: str, type: AlarmType) -> Alarm | None:
    return next((a for a in gw.book.open_alarms() if a.site == site and a.type is type), None)


async def test_bureau_overview_page(
    tmp_path: Path,
    broker: Mosquitto,
    probe: Probe,
    chromium: Chromium,
) -> None:
    data_dir = tmp_path / "data"
    await seed_history(data_dir, time.time())  # anning's gas-1 was offline 4 h of the last 24
    add_accounts(data_dir, BUREAU)
    port = free_port()
    data = two_sites(data_dir, broker.port)
    data["http"] = {"host": "127.0.0.1", "port": port}
    base = f"http://127.0.0.1:{port}"
    async with running_gateway(parse_config(data)) as rg:
        gw = rg.gw
        app = create_api(gw)
        register_overview_routes(app)
        async with served(app, port), chromium() as (page, errors):
            # xingfu: all quiet; anning: one detector reporting, the smoke detector's will
            # says it is gone (a minor alarm), the button never heard from.
            await probe.telemetry("gas-kitchen", {"lel": 3.0})
            await probe.telemetry("valve-kitchen", {"open": 1})
            await probe.telemetry("gas-1", {"lel": 0.0}, site="anning")
            await probe.publish("safety/anning/smoke-1/status", "offline")
            await until(lambda: _open(gw, "anning", AlarmType.DEVICE_OFFLINE), what="offline")
            await until(lambda: gw.engine.status(DeviceRef("anning", "gas-1")).last_seen)

            # Without a session the page sends the person to log in, and back afterwards.
            await page.goto(f"{base}/bureau")
            await page.wait_for_url(f"{base}/login?next=%2Fbureau")
            await submit_login(page, BUREAU.login, BUREAU.password)
            await page.wait_for_url(f"{base}/bureau")
            await expect(page.locator("#who-name")).to_have_text(BUREAU.name)
            await wait_state(page, "live and polled", live=True, pollOk=True)
            await expect(page.locator("#conn-text")).to_have_text("已连接 · 实时")
            await expect(page.locator("#site-rows tr.site")).to_have_count(2)
            await expect(page.locator("#county")).to_have_text("县民政局")
            # by severity: anning (an offline detector, a minor alarm) above quiet xingfu
            await wait_order(page, ["anning", "xingfu"])

            cookie = await session_cookie(page)
            async with httpx.AsyncClient(base_url=base, cookies={"sg_session": cookie}) as api:
                overview = (await api.get("/api/overview")).json()
            rates = {s["id"]: s["online_rate_24h"] for s in overview["sites"]}
            assert rates["xingfu"] == 1.0
            assert 0.91 < rates["anning"] < 0.92

            anning = page.locator('tr[data-site="anning"]')
            await expect(anning).to_have_attribute("data-status", "warning")
            await expect(anning.locator(".c-status")).to_contain_text("注意")
            await expect(anning.locator(".c-status")).to_contain_text("有一般报警")
            await expect(anning.locator(".c-name")).to_contain_text("安宁儿童福利院")
            await expect(anning.locator(".c-kind")).to_have_text("儿童福利机构")
            chips = anning.locator(".c-devices [data-status]")
            assert await chips.all_text_contents() == ["在线 1", "离线 1", "故障 0", "未知 1"]
            await expect(anning.locator(".c-alarms [data-severity=minor]")).to_have_text("一般 1")
            await expect(anning.locator(".c-alarms")).to_contain_text("未确认 1")
            oldest = anning.locator(".c-oldest")
            await expect(oldest).to_contain_text("设备离线")
            await expect(oldest).to_contain_text("二楼走廊")
            await expect(oldest).to_contain_text(re.compile(r"已等待 \d+秒"))
            await expect(anning.locator(".c-contact")).to_contain_text("秒前")
            rate_text = await anning.locator(".c-rate .rate").text_content() or ""
            assert re.fullmatch(r"9\d\.\d\d%", rate_text), rate_text
            assert float(rate_text[:-1]) == pytest.approx(rates["anning"] * 100, abs=0.02)

            xingfu = page.locator('tr[data-site="xingfu"]')
            await expect(xingfu).to_have_attribute("data-status", "ok")
            await expect(xingfu.locator(".c-status")).to_contain_text("正常")
            await expect(xingfu.locator(".c-kind")).to_have_text("养老机构")
            chips = xingfu.locator(".c-devices [data-status]")
            assert await chips.all_text_contents() == ["在线 2", "离线 0", "故障 0", "未知 3"]
            await expect(xingfu.locator(".c-alarms")).to_have_text("无")
            await expect(xingfu.locator(".c-oldest")).to_have_text("—")
            await expect(xingfu.locator(".c-rate .rate")).to_have_text("100.00%")

            await expect(page.locator("#sum-sites")).to_have_text("2")
            await expect(page.locator("#sum-alarm-sites")).to_have_text("0")
            await expect(page.locator("#sum-open")).to_have_text("1")
            await expect(page.locator("#sum-critical")).to_have_text("0")
            await expect(page.locator("#sum-unacked")).to_have_text("1")

            # Sorting by clicking the headers (names in Chinese order: an < cheng).
            def header(key: str) -> Any:
                return page.locator(f'table.sites th[data-sort="{key}"]')

            await header("name").locator("button").click()
            await wait_order(page, ["anning", "xingfu"])
            await expect(header("name")).to_have_attribute("aria-sort", "ascending")
            await header("name").locator("button").click()
            await wait_order(page, ["xingfu", "anning"])
            await expect(header("name")).to_have_attribute("aria-sort", "descending")
            await expect(header("severity")).to_have_attribute("aria-sort", "none")
            await header("kind").locator("button").click()
            await wait_order(page, ["xingfu", "anning"])  # elderly care, then child welfare
            await header("online_rate").locator("button").click()
            await wait_order(page, ["anning", "xingfu"])  # lowest rate first
            await wait_state(page, "sorted by rate", sort="online_rate", reverse=False)

            # Drill-down: the site's devices, alarms and contacts.
            await anning.click()
            detail = page.locator("#detail")
            await expect(detail).to_be_visible()
            await expect(page.locator("#detail-title")).to_have_text("安宁儿童福利院")
            await expect(detail.locator(".tile")).to_have_count(3)
            gas_tile = detail.locator('[data-device="anning/gas-1"]')
            await expect(gas_tile).to_have_attribute("data-status", "online")
            await expect(gas_tile).to_contain_text("0.0 %LEL")
            smoke_tile = detail.locator('[data-device="anning/smoke-1"]')
            await expect(smoke_tile).to_have_attribute("data-status", "offline")
            await expect(smoke_tile).to_contain_text("离线")
            await expect(smoke_tile).to_contain_text("报警：设备离线")
            btn_tile = detail.locator('[data-device="anning/btn-1"]')
            await expect(btn_tile).to_have_attribute("data-status", "unknown")
            alarm_rows = detail.locator("#detail-alarm-rows tr")
            await expect(alarm_rows).to_have_count(1)
            await expect(alarm_rows).to_contain_text("设备离线")
            await expect(alarm_rows).to_contain_text("未处理")
            await expect(page.locator("#detail-contacts")).to_contain_text("赵院长")
            await expect(page.locator("#detail-contacts")).to_contain_text("+8613800000011")
            await expect(page.locator("#detail-meta")).to_contain_text("启东市安宁路1号")
            recent = detail.locator("#detail-recent li")
            await expect(recent).to_have_count(2)
            await expect(detail.locator('li[data-alarm-id="seed-btn-1"]')).to_contain_text(
                "已更换电池"
            )
            await expect(page.locator('tr[data-site="anning"]')).to_have_class(
                re.compile("selected")
            )
            save_screenshot(await page.screenshot(), tmp_path, "bureau-detail.png")
            await page.keyboard.press("Escape")
            await expect(detail).to_be_hidden()

            # A gas leak at xingfu: its row turns red within seconds, and it goes to the top.
            requested = (await bureau_state(page))["requested"]
            await header("severity").locator("button").click()
            await wait_order(page, ["anning", "xingfu"])
            # no request under way when the leak happens: only the live feed can bring it
            settled = await wait_until(
                page,
                "the sort's request answered",
                lambda s: s["requested"] > requested and s["answered"] == s["requested"],
            )
            leak_at = time.monotonic()
            await probe.telemetry("gas-kitchen", {"lel": 26.0})
            await expect(xingfu).to_have_attribute("data-status", "alarm", timeout=5000)
            turned_red_s = time.monotonic() - leak_at
            await answer_valve(probe)
            await wait_order(page, ["xingfu", "anning"])
            # pushed by the live feed's alarm message, not found by the 10 s poll
            after = await bureau_state(page)
            assert after["refreshesBy"].get("alarm", 0) > settled["refreshesBy"].get("alarm", 0)
            await expect(xingfu.locator(".c-status")).to_contain_text("报警")
            await expect(xingfu.locator(".c-alarms [data-severity=critical]")).to_have_text(
                "紧急 1"
            )
            await expect(xingfu.locator(".c-oldest")).to_contain_text("燃气泄漏")
            await expect(xingfu.locator(".c-oldest")).to_contain_text("一楼厨房")
            await expect(page.locator("#sum-alarm-sites")).to_have_text("1")
            await expect(page.locator("#sum-critical")).to_have_text("1")
            await expect(page).to_have_title(re.compile("报警 1"))
            await page.mouse.move(0, 0)
            save_screenshot(await page.screenshot(), tmp_path, "bureau.png")
            assert errors == [], errors
    print(f"bureau row turned red {turned_red_s:.2f} s after the leak was published")


async def test_an_edge_site_turns_red_when_its_edge_gateway_goes_offline(
    tmp_path: Path, broker: Mosquitto, probe: Probe, chromium: Chromium
) -> None:
    """Central mode on the bureau's page: anning is served by its own edge gateway, whose
    presence arrives (as over the bridge) on this broker."""
    port = free_port()
    data = two_sites(tmp_path / "data", broker.port)
    data["sites"][1] |= {"served_by": "edge", "edge_gateway": "edge-anning"}
    data["http"] = {"host": "127.0.0.1", "port": port}
    base = f"http://127.0.0.1:{port}"
    presence = "safety/gateways/edge-anning"
    async with (
        running_gateway(parse_config(data)) as rg,
        served(create_api(rg.gw), port),
        chromium() as (page, errors),
    ):
        await page.goto(f"{base}/bureau")
        await wait_state(page, "live and polled", live=True, pollOk=True)
        anning = page.locator('tr[data-site="anning"]')
        badge = anning.locator(".edge-badge")
        await expect(badge).to_have_attribute("data-edge", "unknown")
        await expect(badge).to_have_text("边缘网关状态未知")

        online = {"gateway": "edge-anning", "status": "online", "sites": ["anning"]}
        await probe.publish(presence, online, retain=True)
        # pushed by the live feed (the poll is every 10 s)
        await expect(badge).to_have_attribute("data-edge", "online")
        await expect(badge).to_have_text("边缘网关在线")
        await expect(anning).to_have_attribute("data-status", "ok")

        await probe.publish(presence, online | {"status": "offline"}, retain=True)
        await expect(anning).to_have_attribute("data-status", "alarm")
        await expect(badge).to_have_text("边缘网关离线")
        await expect(anning.locator(".c-status")).to_contain_text("边缘网关离线")
        await wait_order(page, ["anning", "xingfu"])
        assert (await bureau_state(page))["refreshesBy"].get("edge", 0) >= 2, "live, not polled"
        await page.mouse.move(0, 0)
        save_screenshot(await page.screenshot(), tmp_path, "bureau-edge-offline.png")
        assert errors == [], errors
