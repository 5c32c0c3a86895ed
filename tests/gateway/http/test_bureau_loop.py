"""The bureau page's closed loop in a real browser (Debian's chromium, driven by Playwright):
the county's hazard ledger with the bureau's on-site check of a major hazard, a
rectification notice issued and printed, an incident's phone-report clock running out, and
the 15:00 self-report board at 10:00, 14:30 and 15:00.

The gateway runs without a broker (nothing here needs devices) on a fake wall clock, and the
page's clock is set to the same instant (Playwright's `clock.set_fixed_time`, timers still
running): the page counts the clocks on SafetyClock, which is the browser's clock corrected by
the gateway's answers, so both move together whenever the test moves time. Data is prepared
through the API as the institution enters it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Page, expect

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from gateway.http.overview import register_overview_routes
from gateway.people.model import Person, Role
from gateway.people.passwords import hash_password
from tests.conftest import FakeClock, free_port, served
from tests.support.accounts import BUREAU, submit_login
from tests.support.browser import Chromium, save_screenshot
from tests.support.overview import two_sites

pytestmark = pytest.mark.slow

ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 18, 10, 0, tzinfo=ZONE).timestamp()  # a Wednesday, 10:00
MIN = 60.0
WANG = Person("wang", "王值班", Role.DUTY, frozenset({"xingfu"}))  # the institution's
LEADER = Person("zhangju", "张局长", Role.BUREAU_LEADER, frozenset())
ITEMS = ("gas", "electrical", "fire_exits", "heating", "kitchen", "residents_visited")


class Api:
    """The API as a person with a token calls it (the institution preparing data)."""

    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    async def __call__(
        self, who: str, method: str, url: str, body: dict[str, Any] | None = None
    ) -> Any:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        r = await self.client.request(method, url, json=body, headers=headers)
        assert r.is_success, f"{method} {url}: {r.status_code} {r.text}"
        return r.json()


async def hazard(api: Api, location: str, level: str, deadline_min: float, **kw: str) -> int:
    deadline = datetime.fromtimestamp(T0 + deadline_min * MIN, ZONE).isoformat()
    body = {"site": "xingfu", "location": location, "level": level, "deadline": deadline,
            "responsible": "李四应", "measure": "限期整改"} | kw  # fmt: skip
    return int((await api("wang", "POST", "/api/hazards", body))["id"])


async def prepare(api: Api) -> dict[str, Any]:
    """What the institution (xingfu) has entered by 10:00; anning has entered nothing."""
    h1 = await hazard(api, "二楼配电间", "major", 3 * 24 * 60, description="配电箱线路老化")
    for step in ("rectifying", "awaiting_verification"):
        await api("wang", "POST", f"/api/hazards/{h1}/transition", {"to": step, "note": "已更换"})
    h2 = await hazard(api, "一楼厨房", "general", 20, description="燃气软管老化")
    h3 = await hazard(api, "东侧消防通道", "major", 7 * 24 * 60, description="通道堆放杂物")
    opened = {"site": "xingfu", "title": "厨房燃气泄漏"}
    incident = await api("wang", "POST", "/api/incidents", opened)
    answers = [{"item": i, "result": "ok", "note": ""} for i in ITEMS]
    answers[4] = {"item": "kitchen", "result": "problem", "note": "灶台软管老化"}
    await api("wang", "PUT", "/api/sites/xingfu/daily-checks/2026-11-18", {"items": answers})
    people = [{"login": BUREAU.login}, {"login": LEADER.login, "role": "leader"}]
    roster = {"scope": "bureau", "shift": "day", "people": people}
    await api("liju", "PUT", "/api/duty", roster)
    return {"h1": h1, "h2": h2, "h3": h3, "incident": incident["id"]}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[FakeClock, Api, str]]:
    data = two_sites(tmp_path / "data", 1)  # port 1: no broker, the closed loop needs none
    port = free_port()
    data["http"] = {"host": "127.0.0.1", "port": port}
    clock = FakeClock(T0)
    async with Gateway(parse_config(data), clock=clock, monotonic=clock.monotonic) as gw:
        gw.people.add(
            Person(BUREAU.login, BUREAU.name, BUREAU.role, BUREAU.sites),
            hash_password(BUREAU.password),
            clock(),
        )
        tokens = {}
        for person in (WANG, LEADER):
            gw.people.add(person, None, clock())
        for login in ("wang", BUREAU.login):
            _, tokens[login] = gw.people.issue_token(login, "t", "test", clock())
        app = create_api(gw)
        register_overview_routes(app)
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
            served(app, port),
        ):
            yield clock, Api(client, tokens), f"http://127.0.0.1:{port}"


async def move_to(page: Page, clock: FakeClock, at: float) -> None:
    """The gateway's wall clock and the page's, to the same instant."""
    clock.advance(at - clock())
    await page.clock.set_fixed_time(datetime.fromtimestamp(at, ZONE))


async def tab(page: Page, view: str) -> None:
    await page.locator(f'nav.bureau-views a[data-view="{view}"]').click()
    await expect(page.locator(f'main > .view[data-view="{view}"]')).to_be_visible()
    await expect(page).to_have_url(re.compile(f"#view={view}$"))


async def test_the_bureau_closes_the_loop(
    rig: tuple[FakeClock, Api, str], chromium: Chromium, tmp_path: Path
) -> None:
    clock, api, base = rig
    ids = await prepare(api)
    async with chromium() as (page, errors):
        await page.clock.set_fixed_time(datetime.fromtimestamp(T0, ZONE))
        # A bookmark of the ledger: the login comes back to it.
        await page.goto(f"{base}/bureau#view=ledger")
        await page.wait_for_url(re.compile(r"/login\?next="))
        await submit_login(page, BUREAU.login, BUREAU.password)
        await page.wait_for_url(f"{base}/bureau#view=ledger")
        await expect(page.locator('main > .view[data-view="ledger"]')).to_be_visible()
        await expect(page.locator('main > .view[data-view="sites"]')).to_be_hidden()

        # ---------------------------------------------------------------- 隐患台账
        rows = page.locator("#ledger-rows tr.hazard")
        await expect(rows).to_have_count(3)
        await expect(rows.first).to_have_attribute("data-id", str(ids["h1"]))  # awaiting check
        await expect(page.locator(".lc-awaiting")).to_have_text("待核查 1")
        await expect(page.locator(".lc-major")).to_have_text("重大 2")
        await expect(page.locator("#nav-ledger")).to_have_text("1")
        await page.locator("#ledger-level").select_option("major")
        await expect(rows).to_have_count(2)
        xlsx = await page.locator("#ledger-xlsx").get_attribute("href") or ""
        assert "level=major" in xlsx and "format=xlsx" in xlsx, xlsx
        got = await page.request.get(f"{base}{xlsx}")
        assert got.ok and got.headers["content-type"].startswith("application/vnd.openxml")
        await page.locator("#ledger-level").select_option("")
        await expect(rows).to_have_count(3)

        await rows.first.click()
        dialog = page.locator("#hazard-dialog")
        await expect(dialog).to_be_visible()
        timeline = dialog.locator("#hazard-timeline li")
        await expect(timeline).to_have_count(3)
        await expect(timeline.nth(1)).to_contain_text("王值班")
        await dialog.locator("#hazard-pass").click()  # no note: the check needs one
        await expect(dialog.locator("#hazard-error")).to_contain_text("请填写核查意见")
        await dialog.locator("#hazard-note").fill("现场核查：线路已全部更换，验收合格")
        await dialog.locator("#hazard-pass").click()
        await expect(timeline).to_have_count(4)
        verified = timeline.nth(3)
        await expect(verified).to_have_attribute("data-action", "verified")
        await expect(verified).to_contain_text(BUREAU.actor)
        await expect(verified).to_contain_text("线路已全部更换")
        await expect(dialog).to_have_attribute("data-status", "closed")
        await expect(dialog.locator("#hazard-pass")).to_be_hidden()
        await dialog.locator("#hazard-cancel").click()
        await expect(page.locator(".lc-closed")).to_have_text("已销号 1")
        h1 = await api("liju", "GET", f"/api/hazards/{ids['h1']}")
        assert (h1["status"], h1["verified_by"]) == ("closed", BUREAU.actor)

        # ---------------------------------------------------------------- 整改通知
        await tab(page, "notices")
        await page.locator("#notice-new").click()
        form = page.locator("#notice-dialog")
        await form.locator("#notice-site").select_option("xingfu")
        picks = form.locator("#notice-hazards input[type=checkbox]")
        await expect(picks).to_have_count(2)  # h1 is closed
        await form.locator(f'#notice-hazards input[value="{ids["h3"]}"]').check()
        await expect(form.locator("#notice-person")).to_have_value("李四应")
        await form.locator("#notice-requirements").fill("立即清理消防通道，保持畅通")
        await form.locator("#notice-submit").click()
        await expect(form).to_be_hidden()
        notice = page.locator("#notice-rows tr.notice")
        await expect(notice).to_have_count(1)
        number = "整改〔2026〕第1号"
        await expect(notice.locator(".c-number")).to_have_text(number)
        await expect(notice.locator(".c-issued")).to_contain_text(BUREAU.actor)
        await expect(notice.locator(".c-hazards")).to_have_text(f"#{ids['h3']}")
        await expect(notice.locator(".c-nstate")).to_have_text("待签收")
        issued = (await api("liju", "GET", "/api/notices"))["notices"][0]
        assert issued["deadline"] == "2026-11-25T10:00:00.000+08:00", issued
        async with page.expect_popup() as popup_info:
            await notice.locator("a.notice-print").click()
        printed = await popup_info.value
        await expect(printed.locator("p.number")).to_have_text(number)
        await expect(printed.locator("body")).to_contain_text("立即清理消防通道")
        await printed.close()
        await api("wang", "POST", f"/api/notices/{issued['id']}/receipt")
        await page.locator("#notices-refresh").click()
        await expect(notice.locator(".c-nstate")).to_contain_text("已签收")
        await expect(notice.locator(".c-nstate")).to_contain_text("王值班")
        # Its one hazard rectified and verified: the notice is closed (销账).
        for step, who in (
            ("rectifying", "wang"),
            ("awaiting_verification", "wang"),
            ("closed", "liju"),
        ):
            url = f"/api/hazards/{ids['h3']}/transition"
            await api(who, "POST", url, {"to": step, "note": "通道已清理"})
        await page.locator("#notices-refresh").click()
        await expect(notice.locator(".c-nstate")).to_contain_text("已销账")
        # The browser's back button goes back to the previous view.
        await page.go_back()
        await expect(page.locator('main > .view[data-view="ledger"]')).to_be_visible()
        await page.go_forward()
        await expect(page.locator('main > .view[data-view="notices"]')).to_be_visible()

        # ---------------------------------------------------------------- 事件
        await tab(page, "incidents")
        incident = page.locator(f'#incident-rows tr[data-id="{ids["incident"]}"]')
        phone = incident.locator("td[data-clock=phone]")
        written = incident.locator("td[data-clock=written]")
        await expect(phone).to_have_attribute("data-state", "running")
        await expect(phone.locator(".clock-text")).to_have_text("剩余 30分00秒")
        await expect(page.locator("#sum-missed")).to_have_text("0")
        await move_to(page, clock, T0 + 31 * MIN)
        await expect(phone).to_have_attribute("data-state", "missed")
        await expect(phone.locator(".clock-text")).to_have_text("已超时 1分00秒")
        await expect(written.locator(".clock-text")).to_have_text("剩余 29分00秒")
        await expect(page.locator("#sum-missed")).to_have_text("1")
        await expect(incident).to_have_class(re.compile(r"\bmissed\b"))
        # The gateway agrees, and a reload comes back to the same view and the same clock.
        (seen,) = await api("liju", "GET", "/api/incidents")
        assert seen["clocks"]["phone"]["state"] == "missed"
        await page.reload()
        await expect(page.locator('main > .view[data-view="incidents"]')).to_be_visible()
        await expect(phone).to_have_attribute("data-state", "missed")
        await expect(page.locator("#sum-missed")).to_have_text("1")

        # ---------------------------------------------------------------- 每日自查
        await tab(page, "checks")
        view = page.locator('main > .view[data-view="checks"]')
        xingfu = page.locator('#check-rows tr[data-site-id="xingfu"]')
        anning = page.locator('#check-rows tr[data-site-id="anning"]')
        await expect(view).to_have_attribute("data-phase", "open")
        await expect(xingfu.locator(".c-standing")).to_have_text("已上报")
        await expect(xingfu).to_contain_text("11-18 10:00")
        await expect(xingfu).to_contain_text("王值班")
        await expect(anning.locator(".c-standing")).to_have_text("未上报")
        await expect(anning).to_have_class(re.compile(r"\bphase-open\b"))
        await expect(page.locator("#checks-missing")).to_be_hidden()
        await expect(page.locator("#duty-on")).to_contain_text(BUREAU.name)
        await expect(page.locator("#duty-leader")).to_contain_text(LEADER.name)
        await xingfu.locator("button.check-open").click()
        items = page.locator("#check-items tr")
        await expect(items).to_have_count(len(ITEMS))
        kitchen = page.locator('#check-items tr[data-item="kitchen"]')
        await expect(kitchen).to_contain_text("有问题")
        await expect(kitchen).to_contain_text("灶台软管老化")
        await page.locator("#check-dialog button").click()

        await move_to(page, clock, datetime(2026, 11, 18, 14, 31, tzinfo=ZONE).timestamp())
        await expect(view).to_have_attribute("data-phase", "remind")
        await expect(anning).to_have_class(re.compile(r"\bphase-remind\b"))
        await expect(anning.locator(".c-standing")).to_contain_text("已提醒")
        await expect(page.locator("#checks-missing")).to_be_hidden()

        await move_to(page, clock, datetime(2026, 11, 18, 15, 1, tzinfo=ZONE).timestamp())
        await expect(view).to_have_attribute("data-phase", "overdue")
        await expect(anning).to_have_class(re.compile(r"\bphase-overdue\b"))
        missing = page.locator("#checks-missing")
        await expect(missing).to_be_visible()
        await expect(missing.locator("b")).to_have_text("15:00 未上报")
        await expect(missing.locator("li")).to_have_text(["安宁儿童福利院"])
        await expect(xingfu.locator(".c-standing")).to_have_text("已上报")
        await expect(page.locator("#nav-checks")).to_have_text("1")
        save_screenshot(await page.screenshot(full_page=True), tmp_path, "bureau-checks.png")

        await page.locator("#checks-date").fill("2026-11-17")  # the day before: nobody
        await expect(page.locator('#check-rows tr[data-standing="missing"]')).to_have_count(2)
        await expect(missing.locator("li")).to_have_count(2)

        # Back in the ledger after 10:20: the kitchen hazard is past its deadline.
        await tab(page, "ledger")
        await page.locator("#ledger-overdue").check()
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-id", str(ids["h2"]))
        await expect(rows.first.locator(".overdue-mark")).to_have_text("逾期")
        assert errors == [], errors
