"""A device's commissioning page in a real browser (Debian's chromium via Playwright): a gas
detector with eight hours of readings fed through the gateway's router on its fake clock (an
alarm among them), reached from its tile: its live value, the last raw payload, its
thresholds, and the trend chart with the thresholds drawn and the alarm period shaded,
checked on the canvas's pixels. The screenshot is artifacts/device-page.png."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
from playwright.async_api import Page, expect

from gateway.app.supervisor import Gateway
from gateway.config.loading import parse_config
from gateway.http.app import create_api
from tests.conftest import FakeClock, free_port, served, site_config
from tests.support.browser import chromium_page, save_screenshot

HOURS = 8
ALARM_AT = (5 * 60, 5 * 60 + 20)  # minutes into the readings: lel above the alarm level


def lel_at(minute: int) -> float:
    if ALARM_AT[0] <= minute < ALARM_AT[1]:
        return 28.0 + 6.0 * math.sin(minute / 3.0)
    return round(3.0 + 2.0 * math.sin(minute / 40.0), 1)


def feed(gw: Gateway, clock: FakeClock) -> None:
    for minute in range(HOURS * 60):
        clock.advance(60)
        payload = orjson.dumps({"values": {"lel": lel_at(minute)}})
        gw.router.on_message("safety/xingfu/gas-kitchen/telemetry", payload)


async def canvas_colors(page: Page, quantity: str) -> dict[str, Any]:
    """The pixels where the chart must have drawn: along the level_1 threshold (20 %LEL),
    inside the alarm period near the top, and outside it."""
    found: dict[str, Any] = await page.evaluate(
        """(q) => {
        const fig = document.querySelector(`figure[data-quantity="${q}"]`);
        const u = fig._plot;
        const ctx = u.ctx;
        const px = (x, y) => Array.from(ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data);
        const y20 = Math.round(u.valToPos(20, 'y', true));
        const line = [];
        for (let i = 0; i < 60; i++) line.push(px(u.bbox.left + 20 + i, y20));
        const period = JSON.parse(fig.dataset.periodsAt);
        const mid = u.valToPos((period[0] + period[1]) / 2, 'x', true);
        const before = u.valToPos(period[0] - 3600, 'x', true);
        const top = u.bbox.top + 4;
        return {line, inside: px(mid, top), outside: px(before, top)};
    }""",
        quantity,
    )
    return found


async def test_the_commissioning_page_shows_values_raw_thresholds_and_trend(
    tmp_path: Path,
) -> None:
    data = site_config(tmp_path / "data", 1)
    del data["mqtt"]  # no broker: readings go into the router directly
    clock = FakeClock()
    port = free_port()
    async with (
        Gateway(parse_config(data), clock=clock, monotonic=clock.monotonic) as gw,
        served(create_api(gw), port),
        chromium_page() as (page, errors),
    ):
        feed(gw, clock)
        await page.goto(f"http://127.0.0.1:{port}/")
        # From the device's tile in the device grid.
        await page.locator('article.tile[data-device="xingfu/gas-kitchen"] a.tile-location').click()
        await expect(page.locator("#view-device")).to_be_visible()
        assert "#device=xingfu/gas-kitchen" in page.url
        values = page.locator("#dv-values")
        await expect(values).to_contain_text("燃气浓度")
        await expect(values).to_contain_text(f"{lel_at(HOURS * 60 - 1):.1f} %LEL")
        raw = orjson.loads(await page.locator("#dv-raw-text").text_content() or "")
        assert raw == {"values": {"lel": lel_at(HOURS * 60 - 1)}}
        thresholds = page.locator(".dv-thresholds")
        await expect(thresholds).to_contain_text("一级报警")
        await expect(thresholds).to_contain_text("20.0 %LEL")
        await expect(thresholds).to_contain_text("关阀")
        chart = page.locator('figure.dv-chart[data-quantity="lel"]')
        await expect(chart.locator("canvas")).to_have_count(1)
        await expect(chart).to_have_attribute("data-levels", "10,20,50")
        assert int(await chart.get_attribute("data-drawn") or 0) == HOURS * 60 * 60 // 30 // 2
        assert await chart.get_attribute("data-periods") == "1"
        colors = await canvas_colors(page, "lel")
        # level_1 is critical: its dashed line is the critical red (#ff4d4f) somewhere along it.
        assert any(r > 200 and g < 120 and b < 120 for r, g, b, _ in colors["line"]), colors
        # The alarm period is shaded red; an hour before it, the plot's background is not.
        inside, outside = colors["inside"], colors["outside"]
        assert inside[0] > inside[1] + 15 and inside[3] > 0, colors
        assert not outside[0] > outside[1] + 15, colors
        save_screenshot(await page.screenshot(full_page=True), tmp_path, "device-page.png")
        assert errors == []
