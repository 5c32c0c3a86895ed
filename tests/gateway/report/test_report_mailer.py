"""The daily report's mailer on a fake clock, against a real aiosmtpd server on loopback:
at 14:30 once, catching up after a restart, retries and recorded failures, the old JSON state."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Callable
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from gateway.alarms.store import AlarmStore
from gateway.config.inventory import Inventory
from gateway.config.loading import parse_config
from gateway.config.schema import GatewayConfig
from gateway.report import (
    XLSX_MIME,
    ReportMailer,
)
from gateway.report.mailer import report_sender
from gateway.report.mailings import MailingFailure, Mailings
from tests.conftest import FakeClock, MailHandler, free_port, until
from tests.support.report import COUNTY, DAY, END, NUANQUAN, SH, XINGFU, H, config_data

# --------------------------------------------------------------------------- mailer


def mailer_for(
    store: AlarmStore, config: GatewayConfig, clock: Callable[[], float], **kw: Any
) -> ReportMailer:
    sender = report_sender(config)
    assert sender is not None
    kw.setdefault("poll_s", 0.01)
    kw.setdefault("retry_backoff_s", 0.01)
    return ReportMailer(config, store, Inventory(config), sender, clock=clock, **kw)


async def saved(data_dir: Path) -> Mailings:
    """What the mailer has on disk, as a restarted mailer reads it."""
    mailings = Mailings(data_dir / "alarms.sqlite3")
    await mailings.load()
    return mailings


async def run_for(mailer: ReportMailer, predicate: Callable[[], bool], what: str) -> None:
    """Run the mailer until `predicate` holds (then stop it), failing after 10 s."""
    task = asyncio.create_task(mailer.run())
    try:
        await until(predicate, 10.0, what)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def idle(mailer: ReportMailer, seconds: float = 0.3) -> None:
    """Run the mailer a while in real time, with its clock standing still (the tests then
    check that nothing was sent: the sleep is the behaviour under test, bounded)."""
    task = asyncio.create_task(mailer.run())
    await asyncio.sleep(seconds)
    assert not task.done() or task.exception() is None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def attachment(msg: EmailMessage) -> tuple[str | None, bytes]:
    (part,) = list(msg.iter_attachments())
    assert part.get_content_type() == XLSX_MIME
    payload = part.get_content()
    assert isinstance(payload, bytes)
    return part.get_filename(), payload


async def test_mailer_sends_at_1430_once_and_catches_up(
    store: AlarmStore,
    tmp_path: Path,
    smtp: tuple[MailHandler, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, port = smtp
    config = parse_config(config_data(tmp_path / "data", port))
    clock = FakeClock(END - 1800)  # 14:00

    # Before 14:30 nothing goes out, however long it runs in real time.
    first = mailer_for(store, config, clock)
    task = asyncio.create_task(first.run())
    try:
        await asyncio.sleep(0.3)  # nothing before 14:30: a bounded look
        assert handler.envelopes == []
        clock.now = END  # 14:30: the county report to the bureau, xingfu's to its manager
        await until(lambda: len(handler.envelopes) == 2, 10.0, "two report mails")
        await asyncio.sleep(0.2)  # and not a third: a bounded look
        assert len(handler.envelopes) == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    by_rcpt = {
        tuple(e.rcpt_tos): m for e, m in zip(handler.envelopes, handler.messages(), strict=True)
    }
    county = by_rcpt[("bureau@minzheng.example.cn",)]
    site = by_rcpt[("li@xingfu.example.cn",)]
    assert county["Subject"] == f"{COUNTY} 民政服务机构安全日报 2026-11-24"
    assert site["Subject"] == f"{XINGFU} 安全日报 2026-11-24"
    raw_subject = handler.envelopes[0].content
    assert isinstance(raw_subject, bytes) and b"=?utf-8?" in raw_subject  # RFC 2047 on the wire
    assert site["To"] == "李四应 <li@xingfu.example.cn>"
    assert site["From"] == "gw@zhongyang.example.cn"
    assert site.get_content_type() == "multipart/mixed"
    alternative = next(
        p for p in site.iter_parts() if p.get_content_type() == "multipart/alternative"
    )
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    html_part = site.get_body(preferencelist=("html",))
    assert html_part is not None
    html_text = html_part.get_content()
    assert f"<h1>{XINGFU} 安全日报 2026-11-24</h1>" in html_text and NUANQUAN not in html_text
    text_part = site.get_body(preferencelist=("plain",))
    assert text_part is not None and "未关闭 4 起" in text_part.get_content()

    name, xlsx = attachment(site)
    assert name == f"{XINGFU}_安全日报_2026-11-24.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert [r[0] for r in wb["汇总"].iter_rows(min_row=2, max_row=2, values_only=True)] == [XINGFU]
    name, xlsx = attachment(county)
    assert name == f"{COUNTY}_民政服务机构安全日报_2026-11-24.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert [r[0] for r in wb["汇总"].iter_rows(min_row=2, max_row=4, values_only=True)] == [
        XINGFU,
        NUANQUAN,
        "合计（2家）",
    ]

    state = await saved(tmp_path / "data")
    assert state.last_day == DAY and state.failures == ()

    # Restarted at 14:45: the day was sent, nothing again.
    clock.now = END + 900
    await idle(mailer_for(store, config, clock))
    assert len(handler.envelopes) == 2

    # Down at 14:30 the next day, started at 18:00: that day's reports go out at once.
    clock.now = END + 24 * H + 3.5 * H
    await run_for(
        mailer_for(store, config, clock), lambda: len(handler.envelopes) == 4, "the next day's"
    )
    subjects = {m["Subject"] for m in handler.messages()[2:]}
    assert subjects == {
        f"{XINGFU} 安全日报 2026-11-25",
        f"{COUNTY} 民政服务机构安全日报 2026-11-25",
    }

    # Started the day after a missed one, before 14:30: the missed day is only logged ...
    clock.now = END + 3 * 24 * H - 4 * H  # 2026-11-27 10:30; the 26th was never sent
    caplog.clear()
    await idle(mailer_for(store, config, clock))
    assert len(handler.envelopes) == 4
    assert "daily report for 2026-11-26 was not mailed" in caplog.text
    # ... and that day's report goes out at its time.
    second = mailer_for(store, config, clock)
    task = asyncio.create_task(second.run())
    try:
        await asyncio.sleep(0.1)  # running before 14:30, so that the test is "at its time"
        clock.now = END + 3 * 24 * H
        await until(lambda: len(handler.envelopes) == 6, 10.0, "the 27th's reports")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert all("2026-11-27" in m["Subject"] for m in handler.messages()[4:])


async def test_restart_part_way_sends_only_the_rest(
    store: AlarmStore, tmp_path: Path, smtp: tuple[MailHandler, int]
) -> None:
    handler, port = smtp
    config = parse_config(config_data(tmp_path / "data", port))
    before = await saved(tmp_path / "data")  # stopped after the county report went out
    await before.finish(date(2026, 11, 23), END - 24 * H)
    await before.record_sent(DAY, (None, "bureau@minzheng.example.cn"), "250", END)
    assert await mailer_for(store, config, FakeClock(END + 60)).send_due(END + 60) == DAY
    assert [e.rcpt_tos for e in handler.envelopes] == [["li@xingfu.example.cn"]]


async def test_upgrade_imports_the_json_state_once(
    store: AlarmStore, tmp_path: Path, smtp: tuple[MailHandler, int]
) -> None:
    handler, port = smtp
    config = parse_config(config_data(tmp_path / "data", port))
    json_state = tmp_path / "data" / "report_state.json"
    state = {  # as the versions before the table wrote it: the 24th half sent
        "last_day": "2026-11-23",
        "day": "2026-11-24",
        "delivered": ["*county*|bureau@minzheng.example.cn"],
        "failures": [
            {
                "day": "2026-11-23",
                "site": "xingfu",
                "to": "li@xingfu.example.cn",
                "error": "SMTPResponseException: (550, 'Rejected')",
                "at": "2026-11-23T14:31:00.000+08:00",
            }
        ],
    }
    json_state.write_text(json.dumps(state), encoding="utf-8")
    assert await mailer_for(store, config, FakeClock(END + 60)).send_due(END + 60) == DAY
    assert [e.rcpt_tos for e in handler.envelopes] == [["li@xingfu.example.cn"]]
    assert not json_state.exists()
    assert (tmp_path / "data" / "report_state.json.imported").exists()
    assert (await saved(tmp_path / "data")).failures == (
        MailingFailure(
            date(2026, 11, 23),
            "xingfu",
            "li@xingfu.example.cn",
            "SMTPResponseException: (550, 'Rejected')",
            datetime(2026, 11, 23, 14, 31, tzinfo=SH).timestamp(),
        ),
    )

    # The old file put back (a backup restored over the data directory) is not read again.
    (tmp_path / "data" / "report_state.json.imported").rename(json_state)
    await idle(mailer_for(store, config, FakeClock(END + 120)))
    assert len(handler.envelopes) == 1
    assert not json_state.exists()


async def test_upgrade_after_the_day_was_mailed_mails_nothing(
    store: AlarmStore, tmp_path: Path, smtp: tuple[MailHandler, int]
) -> None:
    handler, port = smtp
    config = parse_config(config_data(tmp_path / "data", port))
    state = {"last_day": "2026-11-24", "day": "2026-11-24", "delivered": [], "failures": []}
    (tmp_path / "data" / "report_state.json").write_text(json.dumps(state), encoding="utf-8")
    await idle(mailer_for(store, config, FakeClock(END + 600)))
    assert handler.envelopes == []
    assert (await saved(tmp_path / "data")).last_day == DAY


async def test_mailer_retries_a_temporary_refusal(
    store: AlarmStore, tmp_path: Path, smtp_server: Callable[[MailHandler], int]
) -> None:
    handler = MailHandler(fail=2)  # 451 twice, then accepted
    port = smtp_server(handler)
    data = config_data(tmp_path / "data", port)
    data["report"]["recipients"] = [{"name": "局安全科", "email": "bureau@minzheng.example.cn"}]
    config = parse_config(data)
    clock = FakeClock(END + 60)
    mailer = mailer_for(store, config, clock)
    # done: the mail accepted and the day recorded (stopping between the two is a restart)
    await run_for(
        mailer,
        lambda: len(handler.envelopes) == 1 and mailer.mailings.last_day == DAY,
        "mail",
    )
    assert handler.refused == 2
    state = await saved(tmp_path / "data")
    assert state.last_day == DAY and state.failures == ()


async def test_mail_that_cannot_be_sent_is_recorded(
    store: AlarmStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    smtp_server: Callable[[MailHandler], int],
) -> None:
    handler = MailHandler(fail=100, code="550 5.7.1 Rejected")  # permanent: no retry
    port = smtp_server(handler)
    config = parse_config(config_data(tmp_path / "data", port))
    mailer = mailer_for(store, config, FakeClock(END + 60))
    sent = await mailer.send_due(END + 60)
    assert sent == DAY
    assert handler.refused == 2  # one attempt per recipient: a 5xx will not get better
    state = await saved(tmp_path / "data")
    assert state.last_day == DAY
    assert sorted(f.to for f in state.failures) == [
        "bureau@minzheng.example.cn",
        "li@xingfu.example.cn",
    ]
    assert "550" in state.failures[0].error
    assert "could not be mailed" in caplog.text


async def test_unreachable_server_is_retried_then_recorded(
    store: AlarmStore, tmp_path: Path
) -> None:
    config = parse_config(config_data(tmp_path / "data", free_port()))  # nothing listens
    mailer = mailer_for(store, config, FakeClock(END + 60), attempts=3)
    async with asyncio.timeout(30):  # liveness: a refused connection must not hang the mailer
        await mailer.send_due(END + 60)
    assert len(mailer.mailings.failures) == 2
    assert mailer.mailings.last_day == DAY


async def test_a_site_added_by_a_reload_is_in_the_next_county_report(
    store: AlarmStore, tmp_path: Path, smtp: tuple[MailHandler, int]
) -> None:
    handler, port = smtp
    full = config_data(tmp_path / "data", port)
    started = parse_config({**full, "sites": full["sites"][:1]})  # xingfu only
    clock = FakeClock(END)
    sender = report_sender(started)
    assert sender is not None
    inventory = Inventory(started)
    mailer = ReportMailer(
        started, store, inventory, sender, clock=clock, poll_s=0.01, retry_backoff_s=0.01
    )
    reloaded = parse_config(full)  # the reload adds nuanquan (Gateway.apply_config)
    inventory.reload(reloaded)
    mailer.reconfigure(reloaded)
    await run_for(mailer, lambda: len(handler.envelopes) == 2, "the day's reports")
    county = next(m for m in handler.messages() if "bureau" in m["To"])
    _, xlsx = attachment(county)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert [r[0] for r in wb["汇总"].iter_rows(min_row=2, max_row=4, values_only=True)] == [
        XINGFU,
        NUANQUAN,
        "合计（2家）",
    ]
