"""Report periods: the 24 h up to the report time (14:30 by default) in the gateway's zone."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# The days a report can be made for: the period starts the day before at the report time,
# which must stay a representable epoch in every zone (0001-01-01 overflowed: a 500).
FIRST_DAY = date(1970, 1, 2)
LAST_DAY = date(9998, 12, 31)


def day_in_range(day: date) -> bool:
    return FIRST_DAY <= day <= LAST_DAY


def _hhmm(hhmm: str) -> tuple[int, int]:
    m = re.fullmatch(r"([01][0-9]|2[0-3]):([0-5][0-9])", hhmm)
    if m is None:
        raise ValueError(f"report time must be HH:MM, got {hhmm!r}")
    return int(m.group(1)), int(m.group(2))


def report_instant(day: date, hhmm: str, tz: ZoneInfo) -> float:
    """Epoch seconds of `hhmm` local time on `day` (the end of that day's report period)."""
    h, m = _hhmm(hhmm)
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz).timestamp()


def report_period(day: date, hhmm: str, tz: ZoneInfo) -> tuple[float, float]:
    """(start, end): from `hhmm` the day before to `hhmm` on `day`, local time.

    Built from local dates rather than end - 86400, so a DST change gives a 23 or 25 h period
    that still starts and ends at the configured wall-clock time.
    """
    return report_instant(day - timedelta(days=1), hhmm, tz), report_instant(day, hhmm, tz)


def next_report_time(now: float, hhmm: str, tz: ZoneInfo) -> float:
    """The first report time strictly after `now`."""
    today = datetime.fromtimestamp(now, tz).date()
    for offset in range(-1, 3):
        t = report_instant(today + timedelta(days=offset), hhmm, tz)
        if t > now:
            return t
    raise AssertionError("unreachable: a report time falls within any two days")


def latest_report_day(now: float, hhmm: str, tz: ZoneInfo) -> date:
    """The day of the latest complete report period: today once `hhmm` has passed."""
    today = datetime.fromtimestamp(now, tz).date()
    return today if report_instant(today, hhmm, tz) <= now else today - timedelta(days=1)
