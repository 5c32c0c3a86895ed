"""Acknowledging from the phone, end to end (issue 11): real Mosquitto, the gateway on a fake
clock behind a real uvicorn server, the SMS provider's stand-in, and Chromium as a 360 px
phone. The safety manager opens the link of the SMS that reached them and taps 已知晓; the
alarm is theirs, the voice call of five minutes later never comes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from playwright.async_api import Page, expect

from gateway.config.loading import parse_config
from gateway.http.app import create_api
from tests.conftest import (
    FakeClock,
    Mosquitto,
    Probe,
    free_port,
    running_gateway,
    served,
    site_config,
    until,
)
from tests.gateway.notify.test_notify_e2e import gas_alarm, timeline
from tests.support.browser import Chromium, save_screenshot
from tests.support.providers import LEGAL, SAFETY, notify_config, providers

pytestmark = pytest.mark.usefixtures("provider_secrets")

SAFETY_ACTOR = "李四应 (p8613800000002)"


def link_in(sms_form: dict[str, str], public_url: str) -> str:
    """The link as the phone shows it: the variable, or the template's prefix and the code."""
    link = orjson.loads(sms_form["TemplateParam"])["link"]
    return link if link.startswith("http") else f"{public_url}/a/{link}"


async def tap(page: Page, label: str) -> None:
    await page.get_by_role("button", name=label).tap()
    await page.wait_for_load_state()


async def test_the_safety_manager_acknowledges_from_the_sms_link(
    tmp_path: Path,
    broker: Mosquitto,
    probe: Probe,
    chromium: Chromium,
) -> None:
    clock = FakeClock()
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    data = site_config(tmp_path / "data", broker.port)
    async with providers() as p:
        data["notify"] = notify_config(p, public_url=public_url)
        async with (
            running_gateway(parse_config(data), clock=clock) as rg,
            served(create_api(rg.gw), port),
            chromium(phone=True) as (page, errors),
        ):
            alarm_id = await gas_alarm(rg, probe)
            await until(lambda: p.sms_to(SAFETY) and p.sms_to(LEGAL), what="SMS to both phones")
            url = link_in(p.sms_to(SAFETY)[0].form(), public_url)
            assert url != link_in(p.sms_to(LEGAL)[0].form(), public_url), "a link per person"

            response = await page.goto(url)
            assert response is not None and response.status == 200
            await expect(page.get_by_text("燃气泄漏")).to_be_visible()
            await expect(page.get_by_text("未确认")).to_be_visible()
            await expect(page.get_by_text("已关闭（阀门已确认）")).to_be_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, "no sideways scrolling on a 360 px phone"
            box = await page.get_by_role("button", name="已知晓").bounding_box()
            assert box is not None and box["height"] >= 48 and box["width"] >= 300
            save_screenshot(await page.screenshot(full_page=True), tmp_path, "phone-link.png")

            await tap(page, "已知晓")
            await expect(page.locator("#result")).to_contain_text("已确认报警")
            await expect(page.get_by_text(f"已确认（{SAFETY_ACTOR}")).to_be_visible()
            save_screenshot(await page.screenshot(full_page=True), tmp_path, "phone-acked.png")

            alarm = rg.gw.book.get(alarm_id)
            assert alarm is not None and alarm.acked and alarm.acked_by == SAFETY_ACTOR
            entries = [(e.action.value, e.actor) for e in alarm.timeline]
            assert ("acked", SAFETY_ACTOR) in entries and ("responded", SAFETY_ACTOR) in entries
            assert timeline(rg, alarm_id, "responded") == [
                {"status": "seen", "via": "phone_link", "source": "127.0.0.1"}
            ]
            audit = {r.action: r for r in await rg.gw.audit.query()}
            ack = audit["alarm.ack"]
            assert (ack.actor, ack.role, ack.source, ack.target) == (
                "p8613800000002", "safety_manager", "127.0.0.1", alarm_id,
            )  # fmt: skip
            assert audit["link.respond"].actor == "p8613800000002"

            # Escalation stops as for a console ack: no call after five minutes.
            await until(lambda: timeline(rg, alarm_id, "notify_cancelled"), what="cancelled")
            clock.advance(301)
            # A full pass of the escalation at 301 s, awaited: nothing is due any more.
            assert await rg.gw.notifications.deliver_due() == 0
            assert p.voice.requests == [] and p.calls_to(SAFETY) == []

            await tap(page, "已知晓")  # a second tap (or a resent form)
            await expect(page.locator("#result")).to_contain_text("回复过「已知晓」")
            assert len(timeline(rg, alarm_id, "responded")) == 1

            clock.advance(24 * 3600)  # the link's day is over
            response = await page.goto(url)
            assert response is not None and response.status == 410
            await expect(page.get_by_text("链接已过期")).to_be_visible()
            save_screenshot(await page.screenshot(full_page=True), tmp_path, "phone-expired.png")
            assert errors == []
