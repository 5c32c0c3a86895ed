"""Mails the reports every day at the report time, once per day and recipient.

What this module owns: when the reports are due, who gets which report, writing the mail.
What went out is remembered by `gateway.report.mailings`; the mail leaves through the one
SMTP sender (`gateway.notify.smtp`), retried by the one backoff helper (`gateway.notify.retry`).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig, ReportRecipient, SmtpChannel
from gateway.notify.base import SendResult
from gateway.notify.retry import with_backoff
from gateway.notify.smtp import SmtpSender
from gateway.report.mailings import MailingFailure, Mailings, Target
from gateway.report.model import STATE_FILE, XLSX_MIME, DailyReport
from gateway.report.period import latest_report_day, next_report_time
from gateway.report.reader import ReadableStore, build_daily_report
from gateway.report.render_html import render_html, time_text
from gateway.report.render_json import pct_text
from gateway.report.render_xlsx import render_xlsx
from rules.engine import DeviceStatus
from rules.model import DeviceRef

log = logging.getLogger(__name__)


def attachment_name(report: DailyReport) -> str:
    """Chinese, as people file them (RFC 2231 encodes it in the mail)."""
    return f"{report.title.replace(' ', '_')}.xlsx"


def _text_summary(report: DailyReport) -> str:
    """The plain-text part, for mail readers that do not show HTML."""
    tz = ZoneInfo(report.timezone)
    p = report.period
    t = report.totals
    lines = [
        report.title,
        f"统计时段：{time_text(p.start, tz)} 至 {time_text(p.end, tz)}（{report.timezone}）",
        "",
    ]
    for s in report.sites:
        lines.append(
            f"{s.name}：报警 {s.raised} 起，未关闭 {len(s.open_alarms)} 起"
            f"（未确认 {s.unacked_open}），"
            f"在线率 {pct_text(s.online_rate)}，当前离线 {len(s.offline_now)} 台，"
            f"阀门与脱扣操作 {len(s.actions)} 次"
        )
    if report.scope == "county":
        lines.append(
            f"合计：{t.sites} 家机构，报警 {t.raised} 起，未关闭 {t.open_alarms} 起，"
            f"在线率 {pct_text(t.online_rate)}，当前离线 {t.offline_now} 台"
        )
    lines += ["", "详见附件表格。"]
    return "\n".join(lines) + "\n"


def build_report_mail(
    report: DailyReport, sender: str, to: ReportRecipient, html_body: str, xlsx: bytes
) -> EmailMessage:
    """text/plain + text/html alternatives, the workbook attached."""
    mail = EmailMessage()  # the default policy RFC 2047-encodes the Chinese subject and name
    mail["From"] = sender
    mail["To"] = email.utils.formataddr((to.name, to.email))
    mail["Subject"] = report.title
    mail["Date"] = email.utils.formatdate(report.generated_at, localtime=True)
    mail["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    mail.set_content(_text_summary(report), charset="utf-8")
    mail.add_alternative(html_body, subtype="html", charset="utf-8")
    maintype, subtype = XLSX_MIME.split("/")
    mail.add_attachment(xlsx, maintype=maintype, subtype=subtype, filename=attachment_name(report))
    return mail


class ReportSender(Protocol):
    """Sends one mail; never raises for delivery trouble (a `SendResult` says what happened)."""

    @property
    def address(self) -> str: ...

    async def send(self, mail: EmailMessage) -> SendResult: ...


REPORT_SMTP_TIMEOUT_S = 60.0  # a workbook of a county is a larger mail than an alarm


def report_sender(config: GatewayConfig) -> SmtpSender | None:
    """The report's channel: the smtp channel of `notify.channels` named by
    `report.mail_channel`, or None when there is none."""
    name = config.report.mail_channel
    channel = next(
        (c for c in config.notify.channels if c.name == name and isinstance(c, SmtpChannel)),
        None,
    )
    if channel is None:
        return None
    password = os.environ.get(channel.password_env) if channel.password_env else None
    return SmtpSender.for_channel(channel, password, REPORT_SMTP_TIMEOUT_S)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One mail of one day: a recipient and the report they get (site id, or None: county)."""

    recipient: ReportRecipient
    site: str | None

    @property
    def target(self) -> Target:
        return (self.site, self.recipient.email)


def deliveries(config: GatewayConfig) -> list[Delivery]:
    """The county report to a recipient without sites, else one report per listed site."""
    out: list[Delivery] = []
    for r in config.report.recipients:
        if not r.sites:
            out.append(Delivery(r, None))
        else:
            out += [Delivery(r, s) for s in r.sites]
    return out


class ReportMailer:
    """Mails the daily reports at the configured time, once per day.

    The loop sleeps until the next report time by polling the (injectable) clock every
    `poll_s`, so it follows a wall clock that is set late (a gateway that booted without
    network time) and tests with a fake clock run in real milliseconds. A gateway that was
    down at the report time sends that day's reports when it comes back, the same day
    before midnight; a later day's start only logs the missed day (a report of yesterday
    arriving tomorrow is not the daily report the bureau asked for).
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: ReadableStore,
        inventory: Inventory,
        sender: ReportSender,
        *,
        engine_status: Callable[[DeviceRef], DeviceStatus] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_s: float = 30.0,
        attempts: int = 5,
        retry_backoff_s: float = 30.0,  # doubling: 30 s .. 4 min, all within the 15:00 deadline
        db_path: Path | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._inventory = inventory
        self._sender = sender
        self._engine_status = engine_status
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._attempts = attempts
        self._backoff = retry_backoff_s
        self._tz = ZoneInfo(config.gateway.timezone)
        data_dir = Path(config.gateway.data_dir)
        self.mailings = Mailings(db_path or data_dir / "alarms.sqlite3", data_dir / STATE_FILE)

    @classmethod
    def configured(
        cls,
        config: GatewayConfig,
        store: ReadableStore,
        inventory: Inventory,
        device_status: Callable[[DeviceRef], DeviceStatus],
        clock: Callable[[], float],
    ) -> ReportMailer | None:
        """The mailer the configuration asks for, or None when no report is to be mailed."""
        sender = report_sender(config)
        if sender is None or not config.report.recipients:
            return None
        return cls(config, store, inventory, sender, engine_status=device_status, clock=clock)

    def reconfigure(self, config: GatewayConfig) -> None:
        """A reloaded configuration: the next report covers its sites. (Its `report`
        section and mail channel are those the gateway started with: a restart changes them.)"""
        self._config = config

    async def run(self) -> None:
        hhmm = self._config.report.time
        while True:
            now = self._clock()
            await self.send_due(now)
            await self._sleep_until(next_report_time(now, hhmm, self._tz))

    async def _sleep_until(self, due: float) -> None:
        while (left := due - self._clock()) > 0:
            await self._sleep(min(left, self._poll_s))

    async def send_due(self, now: float) -> date | None:
        """Send the latest day's reports if due today and not yet sent; returns the day sent."""
        await self.mailings.load()
        day = latest_report_day(now, self._config.report.time, self._tz)
        if self.mailings.finished(day):
            return None
        if day != datetime.fromtimestamp(now, self._tz).date():
            if self.mailings.last_day is not None:  # a first start is not a missed report
                log.error(
                    "daily report for %s was not mailed: the gateway was not running "
                    "between %s and midnight that day",
                    day,
                    self._config.report.time,
                )
            return None
        await self.send_day(day)
        return day

    async def send_day(self, day: date) -> None:
        await self.mailings.load()
        sent = await self.mailings.sent(day)
        todo = [d for d in deliveries(self._config) if d.target not in sent]
        reports: dict[str | None, tuple[DailyReport, str, bytes] | None] = {}
        for site in dict.fromkeys(d.site for d in todo):
            reports[site] = await self._render(day, site)
        await asyncio.gather(*(self._deliver(day, d, reports[d.site]) for d in todo))
        await self.mailings.finish(day, self._clock())

    async def _render(self, day: date, site: str | None) -> tuple[DailyReport, str, bytes] | None:
        async def build(attempt: int) -> tuple[DailyReport, str, bytes] | None:
            try:
                report = await build_daily_report(
                    self._store,
                    self._config,
                    self._inventory,
                    self._engine_status,
                    day,
                    site,
                    self._clock(),
                )
                return report, render_html(report), render_xlsx(report)
            except Exception:  # a locked or failing disk: retried, then recorded
                log.exception(
                    "daily report for %s (%s): build failed (attempt %d)",
                    day,
                    site or "county",
                    attempt,
                )
                return None

        return await with_backoff(
            build,
            again=lambda built: built is None,
            attempts=self._attempts,
            backoff_s=self._backoff,
            sleep=self._sleep,
        )

    async def _deliver(
        self, day: date, delivery: Delivery, rendered: tuple[DailyReport, str, bytes] | None
    ) -> None:
        to = delivery.recipient
        result = SendResult(False, False, "the report could not be built")
        if rendered is not None:
            report, html_body, xlsx = rendered

            async def mail(attempt: int) -> SendResult:
                message = build_report_mail(report, self._sender.address, to, html_body, xlsx)
                try:
                    result = await self._sender.send(message)
                except Exception as exc:  # noqa: BLE001 - a sender that raises is one failed attempt
                    result = SendResult(False, True, f"{type(exc).__name__}: {exc}")
                if not result.ok:
                    log.warning(
                        "daily report for %s to %s (attempt %d/%d): %s",
                        day, to.email, attempt, self._attempts, result.detail,
                    )  # fmt: skip
                return result

            result = await with_backoff(
                mail,
                again=lambda r: r.worth_retrying,
                attempts=self._attempts,
                backoff_s=self._backoff,
                sleep=self._sleep,
            )
            if result.ok:
                log.info("daily report %s mailed to %s <%s>", report.title, to.name, to.email)
                await self.mailings.record_sent(day, delivery.target, result.detail, self._clock())
                return
        log.error(
            "daily report for %s (%s) could not be mailed to %s <%s>: %s",
            day, delivery.site or "county", to.name, to.email, result.detail,
        )  # fmt: skip
        await self.mailings.record_failure(
            MailingFailure(day, delivery.site, to.email, result.detail, self._clock())
        )
