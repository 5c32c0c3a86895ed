"""The console's 隐患台账 and 每日自查 views in a real browser (Debian's chromium, Playwright).

One walk through, as an institution's duty officer of two homes does it: registers a hazard
from the form and one the gateway suggests from a device offline for a day (the alarm
linked), signs for the bureau's rectification notice, moves the first hazard to 整改中 and
待核查 (the bureau's check of a major hazard is not offered), moves its deadline and reads
the step on its timeline, downloads the ledger; then submits one home's self-report with a
problem item (a note is required) and sees 已上报 and the day's hazard changes under it,
while the countdown for the other home turns amber at the 14:30 reminder and red at 15:00.

Time: the gateway's wall clock is a FakeClock the test steps; the browser's is Playwright's,
installed at the same instant and fast-forwarded alike (no sleeps).
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
from playwright.async_api import expect

from gateway.config.loading import parse_config
from gateway.hazards.model import HazardSource
from gateway.http.app import create_api
from gateway.http.hazard_documents import LEDGER_SHEET
from gateway.people.model import Role
from rules.model import AlarmType
from tests.conftest import (
    FakeClock,
    Mosquitto,
    Probe,
    free_port,
    running_gateway,
    served,
    until,
)
from tests.support.accounts import Account, add_accounts, submit_login
from tests.support.browser import Chromium, save_screenshot
from tests.support.overview import two_sites

SH = ZoneInfo("Asia/Shanghai")
DAY_START = datetime(2026, 11, 24, 14, 0, tzinfo=SH)  # a Tuesday, an hour before the due time
OFFICER = Account(
    "zhoufz", "周值班", Role.DUTY, frozenset({"xingfu", "anning"}), "two-homes-duty-0751"
)


async def test_hazard_ledger_and_daily_self_report(
    tmp_path: Path, broker: Mosquitto, probe: Probe, chromium: Chromium
) -> None:
    started = time.monotonic()
    data_dir = tmp_path / "data"
    add_accounts(data_dir, OFFICER)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = two_sites(data_dir, broker.port)
    data["http"] = {"host": "127.0.0.1", "port": port}
    # The lobby button goes offline the day before; a day later the gateway suggests a hazard.
    clock = FakeClock((DAY_START - timedelta(hours=25)).timestamp())
    async with running_gateway(parse_config(data), clock=clock, monotonic=time.monotonic) as rg:
        gw = rg.gw
        await probe.publish("safety/xingfu/btn-lobby/status", "offline")
        await until(
            lambda: any(a.type is AlarmType.DEVICE_OFFLINE for a in gw.book.open_alarms()),
            what="the lobby button offline",
        )
        offline = next(a for a in gw.book.open_alarms() if a.type is AlarmType.DEVICE_OFFLINE)
        clock.step(25 * 3600)
        async with served(create_api(gw), port), chromium() as (page, errors):
            await page.clock.install(time=datetime.fromtimestamp(clock.now, UTC))
            await page.goto(f"{base}/login?next=%2F%23view%3Dhazards")
            await submit_login(page, OFFICER.login, OFFICER.password)
            await page.wait_for_url(f"{base}/#view=hazards")
            await expect(page.locator("#view-hazards")).to_be_visible()
            await expect(page.locator("#hz-empty")).to_be_visible()

            # -------------------------------------------- 登记隐患 from the inspection form
            form = page.locator("#hz-form-dialog")
            await page.locator("#hz-new").click()
            await expect(form).to_be_visible()
            await form.locator("#hz-f-site").select_option("xingfu")
            await form.locator("#hz-f-location").fill("二楼配电室")
            await form.locator("#hz-f-description").fill("配电箱周边堆放杂物")
            await form.locator("#hz-f-level").select_option("major")
            await form.locator("#hz-form-submit").click()
            await expect(form.locator("#hz-form-error")).to_contain_text("整改责任人")
            await form.locator("#hz-f-responsible").fill("李四应")
            await form.locator("#hz-f-measure").fill("清理杂物，保持通道畅通")
            await form.locator("#hz-f-deadline").fill("2026-11-30T18:00")
            await form.locator("#hz-form-submit").click()
            await expect(form).to_be_hidden()
            rows = page.locator("#hz-rows tr.hz-row")
            await expect(rows).to_have_count(1)
            first = rows.nth(0)
            await expect(first).to_contain_text("二楼配电室")
            await expect(first.locator(".hz-c-level")).to_have_text("重大")
            await expect(first.locator(".hz-c-status")).to_have_text("待整改")
            await expect(first.locator(".hz-c-deadline")).to_have_text("2026-11-30 18:00")

            # The bureau issues a notice about it (its own page is not this test's).
            gw.hazards.issue(
                site="xingfu", hazard_ids=[1], year=2026, issued_at=clock.now,
                issued_by="局值班员 (ju)", person_in_charge="张杰荣", deadline=None,
                requirements="限期清理配电室杂物",
            )  # fmt: skip

            # ----------------------------------------- 登记 from the gateway's suggestion
            suggestion = page.locator("#hz-suggestions li.hz-suggestion")
            await expect(suggestion).to_have_count(1)
            await expect(suggestion).to_contain_text("大厅")
            await suggestion.locator("button[data-action=accept]").click()
            await expect(form).to_be_visible()
            await expect(form.locator("#hz-f-location")).to_have_value("大厅")
            await expect(form.locator("#hz-form-alarm")).to_contain_text(offline.id)
            await form.locator("#hz-f-responsible").fill("王电工")
            await form.locator("#hz-f-measure").fill("更换按钮电池并复测")
            await form.locator("#hz-f-deadline").fill("2026-11-24T12:00")  # already past
            await form.locator("#hz-form-submit").click()
            await expect(form).to_be_hidden()
            await expect(rows).to_have_count(2)
            await expect(rows.nth(1).locator(".hz-overdue-mark")).to_have_text("逾期")
            await expect(rows.nth(0).locator(".hz-overdue-mark")).to_have_count(0)
            await expect(page.locator("#nav-hazards")).to_have_text("1")
            await expect(suggestion).to_have_count(0)  # accepted: the alarm is linked
            linked = gw.hazards.get(2)
            assert linked is not None
            assert (linked.source, linked.alarm_id) == (HazardSource.DEVICE_OFFLINE, offline.id)

            # The notice (loaded again with the ledger): printable, and signed for here.
            notice = page.locator("#hz-notices li.hz-notice")
            await expect(notice).to_contain_text(
                "整改〔2026〕第1号 · 城区幸福养老服务中心 · 待签收"
            )
            print_link = notice.locator("a", has_text="打印")
            await expect(print_link).to_have_attribute("href", "/api/notices/1?format=html")
            await notice.locator("button[data-action=receipt]").click()
            await expect(notice).to_contain_text("已签收")
            await expect(notice).to_contain_text("周值班 (zhoufz)")
            await expect(notice.locator("button[data-action=receipt]")).to_have_count(0)

            # ------------------------------------ the loop's steps, the edit, the timeline
            detail = page.locator("#hz-detail")
            await first.locator("button[data-action=detail]").click()
            await expect(detail).to_be_visible()
            await detail.locator("#hz-d-note").fill("已安排后勤清理")
            await detail.locator("button[data-to=rectifying]").click()
            await expect(detail.locator("#hz-d-title")).to_contain_text("整改中")
            await detail.locator("button[data-to=awaiting_verification]").click()
            await expect(detail.locator("#hz-d-title")).to_contain_text("待核查")
            # A major hazard is the bureau's to verify: nothing offered, and the page says why.
            await expect(detail.locator("#hz-d-steps button")).to_have_count(0)
            await expect(detail.locator("#hz-d-steps-none")).to_contain_text("民政局")
            await detail.locator("#hz-d-edit-box summary").click()
            await detail.locator("#hz-e-deadline").fill("2026-12-05T18:00")
            await detail.locator("#hz-e-save").click()
            timeline = detail.locator("#hz-d-timeline li")
            await expect(timeline).to_have_count(4)
            await expect(timeline.nth(1)).to_contain_text("开始整改")
            await expect(timeline.nth(1)).to_contain_text("已安排后勤清理")
            await expect(timeline.nth(3)).to_contain_text("修改")
            await expect(timeline.nth(3)).to_contain_text(
                "整改期限: 2026-11-30 18:00 → 2026-12-05 18:00"
            )
            await expect(timeline.nth(3)).to_contain_text("周值班 (zhoufz)")
            save_screenshot(await page.screenshot(), tmp_path, "console-hazard-detail.png")
            await detail.locator("[data-cancel]").click()
            await expect(first.locator(".hz-c-status")).to_have_text("待核查")
            await expect(first.locator(".hz-c-deadline")).to_have_text("2026-12-05 18:00")

            # ------------------------------------------------------------- 导出 XLSX
            async with page.expect_download() as download_info:
                await page.locator("#hz-export").click()
            download = await download_info.value
            sheet = openpyxl.load_workbook(io.BytesIO(Path(await download.path()).read_bytes()))
            ledger = list(sheet[LEDGER_SHEET].iter_rows(values_only=True))
            assert [(r[2], r[3]) for r in ledger[1:]] == [
                ("二楼配电室", "配电箱周边堆放杂物"),
                ("大厅", linked.description),
            ]

            # ----------------------------------------------------------------- 每日自查
            await page.locator("nav.views a[data-view=checks]").click()
            countdown = page.locator("#ck-countdown")
            await expect(countdown).to_have_attribute("data-phase", "open")
            await expect(countdown).to_contain_text("截止 15:00 · 还剩")
            await expect(page.locator("#nav-checks")).to_have_text("2")
            xingfu = page.locator('section.ck-site[data-site="xingfu"]')
            anning = page.locator('section.ck-site[data-site="anning"]')
            await expect(xingfu.locator(".ck-standing")).to_have_text("未上报")
            kitchen = xingfu.locator('tr.ck-item[data-item="kitchen"]')
            await kitchen.locator("input[value=problem]").check()
            submit = xingfu.locator("button[data-action=submit]")
            await submit.click()
            await expect(xingfu.locator(".ck-form-error")).to_contain_text("请填写情况说明")
            await kitchen.locator(".ck-note").fill("灶台软管老化，已报修")
            await submit.click()
            await expect(xingfu.locator(".ck-standing")).to_contain_text("已上报 11-24 14:00")
            await expect(xingfu.locator(".ck-standing")).to_contain_text("周值班 (zhoufz)")
            await expect(page.locator("#nav-checks")).to_have_text("1")
            changes = xingfu.locator("li.ck-change")
            await expect(changes).to_have_count(5)  # two found, two steps, one edit
            await expect(changes.filter(has_text="整改期限")).to_contain_text("修改")
            await expect(anning.locator(".ck-no-changes")).to_be_visible()
            check = gw.duty.checks_of(DAY_START.date(), {"xingfu"})["xingfu"]
            assert [(a.item, a.result.value, a.note) for a in check.answers][4] == (
                "kitchen", "problem", "灶台软管老化，已报修",
            )  # fmt: skip

            # anning is not in: amber from the 14:30 reminder, red from 15:00.
            for minutes, phase, words in ((30, "remind", "请尽快上报"), (30, "overdue", "已超时")):
                clock.step(minutes * 60)
                await page.clock.fast_forward(f"{minutes}:00")
                await expect(countdown).to_have_attribute("data-phase", phase)
                await expect(countdown).to_have_class(f"ck-countdown ck-{phase}")
                await expect(countdown).to_contain_text(words)
            await expect(anning.locator(".ck-standing")).to_have_text("未上报（已过截止时间）")
            await expect(xingfu.locator(".ck-standing")).to_contain_text("已上报")
            save_screenshot(await page.screenshot(), tmp_path, "console-daily-checks.png")
            assert errors == []
    assert time.monotonic() - started < 30
