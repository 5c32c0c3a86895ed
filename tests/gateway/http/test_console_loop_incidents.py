"""The duty console's 事件 and 值班 views in a real browser (Debian's chromium via Playwright).

One gateway (no broker: nothing here comes from a device) on a real uvicorn server, one
browser, one walk through as the duty officer does it: opens an incident by hand, watches the
phone clock run and, with the gateway's clock moved past 30 minutes, turn 已超时; records the
phone report (late), submits the written report, prints it, closes the incident; then keeps
the day's roster and hands the shift over with a note.

The page counts the clocks on the gateway's time (`SafetyClock`: the browser's clock set by
the gateway's `Date` header, learnt at the console's health check every 10 s). So the fake
one here is the gateway's wall clock, and its `Date` header follows it; the browser's clock
is only fast-forwarded to bring the next health check at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Page, expect

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.people.model import Role
from tests.conftest import free_port, until
from tests.support.accounts import DUTY, Account, add_accounts, submit_login
from tests.support.browser import Chromium, save_screenshot
from tests.support.overview import two_sites

pytestmark = pytest.mark.slow

SECOND = Account("liduty", "李值班", Role.DUTY, frozenset({"xingfu"}), "second-shift-0751")
WRITTEN = {
    "what_happened": "二楼配电间冒烟，值班员断电并用灭火器处置。",
    "where": "二楼配电间",
    "people_affected": "无人员伤亡，12 名老人临时转移",
    "measures_taken": "断开总闸，干粉灭火器处置，转移老人",
    "current_state": "明火已灭，现场通风",
    "follow_up": "请电工检修线路",
}


class ShiftedClock:
    """The gateway's wall clock: real time, moved forward by the test (`shift`)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


def dated(app: Any, clock: ShiftedClock) -> Any:
    """`app` with its answers' `Date` header from the gateway's clock (uvicorn's is off)."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        async def send_dated(message: Any) -> None:
            if message["type"] == "http.response.start":
                date = formatdate(clock(), usegmt=True).encode()
                message = {**message, "headers": [*message.get("headers", []), (b"date", date)]}
            await send(message)

        await app(scope, receive, send_dated if scope["type"] == "http" else send)

    return asgi


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", date_header=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), what="http server started")
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def move_gateway_clock(page: Page, clock: ShiftedClock, seconds: float) -> None:
    """The gateway's clock on by `seconds`, and the page told at once (its health check)."""
    clock.shift += seconds
    await page.clock.fast_forward("00:10")


async def submit_form(page: Page, **fields: str) -> None:
    """Fill the open form dialog (C.loopForm) and submit it."""
    for name, value in fields.items():
        await page.locator(f"#loop-f-{name}").fill(value)
    await page.locator("#loop-submit").click()


async def test_incident_and_duty_views(tmp_path: Path, chromium: Chromium) -> None:
    data_dir = tmp_path / "data"
    add_accounts(data_dir, DUTY, SECOND)
    data = two_sites(data_dir, 1)
    del data["mqtt"]  # no devices here
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clock = ShiftedClock()
    async with (
        Gateway(parse_config(data), clock=clock) as gw,
        serving(dated(create_api(gw), clock), port),
        chromium() as (page, errors),
    ):
        await page.clock.install(time=datetime.now())
        await page.goto(f"{base}/login?next=%2F%23view%3Dincidents")
        await submit_login(page, DUTY.login, DUTY.password)
        await page.wait_for_url(f"{base}/#view=incidents")
        await expect(page.locator("#who-name")).to_have_text(DUTY.name)
        await expect(page.locator("#no-incidents")).to_be_visible()

        # Opened by hand: the phone clock runs, second by second.
        await page.locator("#incident-new").click()
        await expect(page.locator("#loop-f-site")).to_have_value("xingfu")
        await submit_form(page, title="二楼配电间冒烟")
        card = page.locator("#incident-list article.incident")
        await expect(card).to_have_count(1)
        await expect(card.locator(".incident-title")).to_contain_text("二楼配电间冒烟")
        await expect(card.locator(".sub")).to_contain_text("王值班 (wangzb)")
        phone = card.locator('[data-clock="phone"]')
        written = card.locator('[data-clock="written"]')
        await expect(phone.locator(".clock-label")).to_have_text("电话报告（30 分钟）")
        await expect(phone.locator(".clock-state")).to_have_text(re.compile(r"剩余 (29:5\d|30:00)"))
        first = await phone.locator(".clock-state").text_content()
        await expect(phone.locator(".clock-state")).not_to_have_text(first or "", timeout=3000)
        await expect(page.locator("#nav-incidents")).to_have_text("1")
        await expect(card.locator('button[data-action="close"]')).to_be_disabled()

        # 31 minutes on at the gateway: missed, in red; 25 more: the written one amber.
        await move_gateway_clock(page, clock, 31 * 60)
        await expect(phone.locator(".clock-state")).to_have_text(re.compile(r"已超时 [12] 分钟"))
        await expect(phone).to_have_class(re.compile("clock-missed"))
        await expect(written.locator(".clock-state")).to_have_text(re.compile(r"剩余 2\d:\d\d"))
        await expect(written).to_have_class(re.compile("clock-running"))
        await move_gateway_clock(page, clock, 25 * 60)
        await expect(written).to_have_class(re.compile("clock-amber"))
        await expect(written.locator(".clock-state")).to_have_text(re.compile(r"剩余 0[34]:\d\d"))
        await expect(page.locator("#nav-incidents")).to_have_text("1")

        # The phone report: to whom; the time left as it was is the gateway's now: late.
        await card.locator('button[data-action="phone"]').click()
        await submit_form(page, to_whom="县民政局值班室 李科长")
        await expect(phone.locator(".clock-state")).to_have_text(
            re.compile(r"^已完成 .*（超时完成）")
        )
        await expect(card.locator(".incident-details")).to_contain_text("县民政局值班室 李科长")
        await expect(card.locator('button[data-action="phone"]')).to_be_hidden()

        # The written report: the six fields. Then 结案 may be pressed.
        await card.locator('button[data-action="written"]').click()
        await submit_form(page, **WRITTEN)
        await expect(written.locator(".clock-state")).to_have_text(re.compile(r"^已完成 "))
        await expect(card.locator('button[data-action="close"]')).to_be_enabled()
        await expect(page.locator("#nav-incidents")).to_have_text("")

        # 打印: the printable report, with what was typed.
        async with page.context.expect_page() as popup_info:
            await card.locator('button[data-action="print"]').click()
        popup = await popup_info.value
        await popup.wait_for_load_state()
        printed = await popup.locator("body").inner_text()
        for shown in ("突发事件书面报告", "事件经过", "二楼配电间冒烟，值班员断电",
                      "人员伤亡及影响", "12 名老人临时转移", "后续工作", "县民政局值班室 李科长",
                      "超时完成", "尚未结案"):  # fmt: skip
            assert shown in printed, shown
        await popup.close()

        # 结案, with a note: the card moves to the closed ones.
        await card.locator('button[data-action="close"]').click()
        await submit_form(page, note="线路已检修，复电正常")
        closed = page.locator("#incident-closed-list article.incident")
        await expect(closed).to_have_count(1)
        await expect(closed.locator(".incident-state")).to_have_text("已结案")
        await expect(closed.locator(".incident-details")).to_contain_text("线路已检修，复电正常")
        await expect(page.locator("#incident-list article.incident")).to_have_count(0)
        await expect(page.locator("#no-incidents")).to_be_visible()
        save_screenshot(await page.screenshot(full_page=True), tmp_path, "console-incidents.png")

        # 值班: the day's roster of xingfu, and the bureau's (which a site's officer only reads).
        await page.locator('nav.views a[data-view="duty"]').click()
        xingfu = page.locator('#duty-scopes article[data-scope="xingfu"]')
        await expect(xingfu).to_contain_text("今日未排班")
        bureau = page.locator('#duty-scopes article[data-scope="bureau"]')
        await expect(bureau.locator('button[data-action="roster"]')).to_have_count(0)
        await xingfu.locator('button[data-action="roster"]').click()
        await submit_form(page, people="wangzb, liduty")
        people = xingfu.locator(".duty-people")
        await expect(people).to_contain_text("王值班（wangzb）")
        await expect(people).to_contain_text("李值班（liduty）")

        # A refusal is said in words, in the dialog; then the handover, with its note.
        await xingfu.locator('button[data-action="handover"]').click()
        # the rostered are offered, but the one handing over
        await expect(page.locator("#loop-f-to-list option")).to_have_count(1)
        await expect(page.locator('#loop-f-to-list option[value="liduty"]')).to_have_count(1)
        await submit_form(page, to="nobody", note="x")
        await expect(page.locator("#loop-error")).to_contain_text("输入无效")
        await submit_form(page, to="liduty", note="三号楼燃气表待检修，已报物业")
        await expect(page.locator("#loop-error")).to_be_hidden()
        handover = xingfu.locator(".duty-handover")
        await expect(handover).to_have_count(1)
        await expect(handover).to_contain_text("王值班（wangzb） → 李值班（liduty）")
        await expect(handover).to_contain_text("三号楼燃气表待检修，已报物业")
        save_screenshot(await page.screenshot(full_page=True), tmp_path, "console-duty.png")
        assert not errors, errors
