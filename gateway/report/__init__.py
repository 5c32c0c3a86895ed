"""The daily safety report (seeds 003, 004: every institution reports to the bureau before 15:00).

One report covers the 24 h up to the configured time (`report.time`, 14:30 by default, in the
gateway's zone): the report for 2026-11-24 covers 2026-11-23 14:30 -> 2026-11-24 14:30. It is
made per site, or for the whole county (every site, with totals), and holds:

- alarms raised in the period, by type, by (highest) severity and by disposition;
- alarms not closed at the report time (raised at any time before it), with age, state and
  who acknowledged them;
- each device's online rate over the period (offline time taken from `device_offline`
  alarms) and the devices offline when the report is made;
- valve and trip commands sent in the period, with who asked and the result;
- the false-alarm rate of each device whose alarms were closed in the period.

Everything is computed by pure functions from the alarm store's rows (`AlarmRow`,
`CommandRecord`); online rates and device status are `gateway.status`'s, the same as the
bureau overview's. The thin I/O around them reads through the store's history reads
(`gateway.alarms.history`), renders HTML/XLSX/JSON, mails the reports
every day (`ReportMailer`), and writes them to
files for the CLI (`write_report_files`).

The report describes the period as it was at its end: an alarm's state, acknowledgement and
severity are rebuilt from its timeline at the report time, so the report for a past day made
later says the same as the one mailed that day (except "offline now", which is now).

May import `notify` (the SMTP sender, the retry helper), `status`, `alarms`, `actuate`,
`config`, `rules`; no HTTP (`gateway.http` serves it).
"""

from __future__ import annotations

from gateway.alarms.rows import AlarmRow, LifecycleEntry
from gateway.report.figures import alarm_at
from gateway.report.files import write_report_files
from gateway.report.mailer import ReportMailer
from gateway.report.model import (
    XLSX_MIME,
    DailyReport,
    PeriodNotStarted,
    SiteReport,
    UnknownSite,
)
from gateway.report.period import latest_report_day, next_report_time, report_period
from gateway.report.reader import ReadableStore, build_daily_report
from gateway.report.render_html import render_html
from gateway.report.render_json import report_json
from gateway.report.render_xlsx import render_xlsx
from gateway.status.availability import clipped_total as covered_seconds

__all__ = [
    "XLSX_MIME",
    "AlarmRow",
    "DailyReport",
    "LifecycleEntry",
    "PeriodNotStarted",
    "ReadableStore",
    "ReportMailer",
    "SiteReport",
    "UnknownSite",
    "alarm_at",
    "build_daily_report",
    "covered_seconds",
    "latest_report_day",
    "next_report_time",
    "render_html",
    "render_xlsx",
    "report_json",
    "report_period",
    "write_report_files",
]
