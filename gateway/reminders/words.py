"""A reminder in words: the `Message` the notification channels carry (one line per thing,
as an alarm's lines are), so that SMS templates, robots and mail need nothing new. Pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.notify.base import Message, MessageLine
from gateway.reminders.model import VIEW, Kind, Reminder

TITLE = "【安全提醒】"

# (what is wrong, its state word) per kind
_WORDS = {
    Kind.CHECK_REMIND: ("今日安全自查尚未上报", "未上报"),
    Kind.CHECK_MISSING: ("安全自查未按时上报", "未上报"),
    Kind.PHONE_MISSED: ("事件电话报告已超时", "未报告"),
    Kind.WRITTEN_MISSED: ("事件书面报告已超时", "未报告"),
    Kind.HAZARD_DUE: ("隐患整改即将到期", "整改中"),
    Kind.HAZARD_OVERDUE: ("隐患整改已逾期", "逾期"),
}


def message(
    r: Reminder,
    site_name: Callable[[str], str],
    county: str,
    zone: ZoneInfo,
    public_url: str | None,
) -> Message:
    what, state = _WORDS[r.kind]
    due = datetime.fromtimestamp(r.deadline, zone)
    if r.kind in (Kind.CHECK_REMIND, Kind.CHECK_MISSING):
        when = f"{due:%H:%M}前"
    else:
        when = f"{due:%Y-%m-%d %H:%M}"
    if r.kind is Kind.CHECK_MISSING:
        lines = tuple(MessageLine(site_name(s), s, what, None, when, state) for s in r.sites)
        who, name = "bureau", county
    else:
        about = r.about if r.person is None else f"{r.about}（责任人 {r.person}）"
        lines = (MessageLine(about, "", what, None, when, state),)
        who = r.site or "bureau"
        name = site_name(r.site) if r.site else county
    url = f"{public_url}/#view={VIEW[r.kind]}" if public_url else None
    return Message(who, name, "major", (), lines, console_url=url, title=TITLE)
