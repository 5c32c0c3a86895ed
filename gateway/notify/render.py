"""Chinese texts for every channel, derived from a `Message` by pure functions.

One alarm:  【安全报警】城区幸福养老服务中心 一楼厨房 燃气泄漏 24.5 %LEL 2026-11-24 14:03 未处理
Several alarms of one site (grouped by the escalation engine): a header line with the count
and the highest severity, then one numbered line per alarm.

SMS and voice templates are approved by the provider in advance, so they only receive
short variables (site, location, alarm, time); each is capped because providers reject a
message whose variable is too long, and a rejected alarm SMS is worse than a clipped one.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.notify.base import Message, MessageLine
from rules.model import AlarmType

ELLIPSIS = "…"
# Per-variable cap for SMS/voice template params. Aliyun allows 35 characters for
# verification-code variables and different limits per variable type for notifications;
# 20 stays inside every notification limit we know of, for both Aliyun and Tencent.
SMS_PARAM_MAX = 20
# A link variable may be longer: Aliyun allows 35 characters in one variable. A link is never
# clipped (a clipped link opens nothing): one longer than the cap is sent as its code alone,
# and the template holds `<public_url>/a/` before the variable.
LINK_PARAM_MAX = 35

ALARM_LABELS: Mapping[str, str] = {
    AlarmType.GAS_LEAK.value: "燃气泄漏",
    AlarmType.CO.value: "一氧化碳超标",
    AlarmType.SMOKE.value: "烟雾报警",
    AlarmType.FIRE_BUTTON.value: "一键报警",
    AlarmType.RESIDUAL_CURRENT.value: "剩余电流超限",
    AlarmType.OVERTEMPERATURE.value: "线缆超温",
    AlarmType.OVERCURRENT.value: "过流",
    AlarmType.DEVICE_OFFLINE.value: "设备离线",
    AlarmType.DEVICE_FAULT.value: "设备故障",
    AlarmType.VALVE_FAILURE.value: "切断阀未关闭",
    AlarmType.TRIP_FAILURE.value: "脱扣未确认",
    AlarmType.EDGE_OFFLINE.value: "边缘网关离线",
    AlarmType.STORE_FAILURE.value: "告警数据库损坏",
}

SEVERITY_LABELS: Mapping[str, str] = {
    "critical": "紧急",
    "major": "重要",
    "minor": "一般",
    "warning": "预警",
}

# "acked" is not an AlarmState (acknowledgement is a flag on an active alarm) but people
# need to read it: an acknowledged, still active alarm is shown as 已确认.
STATE_LABELS: Mapping[str, str] = {
    "active": "未处理",
    "acked": "已确认",
    "cleared": "已恢复",
    "closed": "已关闭",
}


def alarm_label(alarm_type: str) -> str:
    """Chinese label of an alarm type; an unknown type shows as itself, never as nothing."""
    return ALARM_LABELS.get(alarm_type, alarm_type)


def severity_label(severity: str) -> str:
    return SEVERITY_LABELS.get(severity, severity)


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)


# ------------------------------------------------------------------------ text helpers


def truncate(text: str, max_len: int, ellipsis: str = ELLIPSIS) -> str:
    """At most `max_len` characters; a clipped text ends with the ellipsis."""
    if len(text) <= max_len:
        return text
    if max_len <= len(ellipsis):
        return text[:max_len]
    return text[: max_len - len(ellipsis)] + ellipsis


def clip_utf8(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8 (robot APIs limit bytes, not characters)."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    room = max(0, max_bytes - len(ELLIPSIS.encode("utf-8")))
    # "ignore" drops a character cut in half at the end
    return raw[:room].decode("utf-8", "ignore") + ELLIPSIS


def line_text(line: MessageLine) -> str:
    """一楼厨房 燃气泄漏 24.5 %LEL 2026-11-24 14:03 未处理 (no value: left out)."""
    parts = (line.location, line.alarm, line.value, line.time, line.state)
    return " ".join(p for p in parts if p)


def distinct_alarms(msg: Message) -> list[str]:
    """Alarm labels in first-seen order, each once."""
    return list(dict.fromkeys(line.alarm for line in msg.lines))


# ------------------------------------------------------------------- chat, mail, webhook


def _links(msg: Message) -> list[str]:
    out = []
    if msg.link:
        which = "第1处" if len(msg.lines) > 1 else ""
        out.append(f"确认{which}：{msg.link}")
    if msg.console_url:
        out.append(f"查看：{msg.console_url}")
    return out


def _with_tail(body: list[str], tail: list[str], max_bytes: int | None) -> str:
    """The body, clipped to `max_bytes` if need be, then the tail (links) whole."""
    text_ = "\n".join(body)
    end = "\n".join(tail)
    if max_bytes is not None:
        room = max_bytes - (len(end.encode("utf-8")) + 1 if end else 0)
        text_ = clip_utf8(text_, max(0, room))
    return f"{text_}\n{end}" if end else text_


def text(msg: Message, max_bytes: int | None = None) -> str:
    """Plain text for chat robots, the webhook and the mail body; links last, never clipped."""
    if len(msg.lines) == 1:
        body = [f"{msg.title}{msg.site_name} {line_text(msg.lines[0])}"]
    else:
        severity = severity_label(msg.severity)
        body = [f"{msg.title}{msg.site_name} {len(msg.lines)}处报警（{severity}）"]
        body += [f"{i}. {line_text(line)}" for i, line in enumerate(msg.lines, 1)]
    return _with_tail(body, _links(msg), max_bytes)


def subject(msg: Message) -> str:
    """One line: the mail subject and the chat notification title.

    【安全报警】城区幸福养老服务中心 燃气泄漏 一楼厨房
    【安全报警】城区幸福养老服务中心 燃气泄漏、一氧化碳超标 共3处
    """
    alarms = "、".join(distinct_alarms(msg))
    if len(msg.lines) == 1:
        return f"{msg.title}{msg.site_name} {alarms} {msg.lines[0].location}"
    return f"{msg.title}{msg.site_name} {alarms} 共{len(msg.lines)}处"


def markdown(msg: Message, max_bytes: int | None = None) -> str:
    """Markdown for DingTalk/WeCom robots: the title line, the severity, one item per alarm.

    Only headings, bold and lists: the subset both robots render.
    """
    count = f" {len(msg.lines)}处报警" if len(msg.lines) > 1 else ""
    out = [f"### {msg.title}{msg.site_name}", "", f"**{severity_label(msg.severity)}**{count}", ""]
    out += [f"- {line_text(line)}" for line in msg.lines]
    tail = ["", f"[在值班台查看]({msg.console_url})"] if msg.console_url else []
    return _with_tail(out, tail, max_bytes)


# --------------------------------------------------------------------- SMS and voice


def _clean(value: str) -> str:
    # Carriers read 【...】 as the SMS signature and providers refuse variables containing
    # it; a line break inside a variable is refused too.
    value = value.replace("【", "").replace("】", "")
    return " ".join(value.split())


def _location(msg: Message, max_len: int, ellipsis: str) -> str:
    if not msg.lines:
        return ""
    first = _clean(msg.lines[0].location)
    if len(msg.lines) == 1:
        return truncate(first, max_len, ellipsis)
    # the count is the important part: clip the location, never the "等N处"
    suffix = f"等{len(msg.lines)}处"
    return truncate(first, max(0, max_len - len(suffix)), ellipsis) + suffix


def sms_params(
    msg: Message, max_len: int = SMS_PARAM_MAX, link_max: int = LINK_PARAM_MAX
) -> dict[str, str]:
    """Template variables site, location, alarm, time; each at most `max_len` characters.
    With a link (`notify.public_url`), a fifth: `link`, the whole link when it fits in
    `link_max`, else its code alone (never clipped). Whichever it is, it is so for every
    message of a deployment (the codes have one length), so the template is written once.

    Grouped: location is the first alarm's location + "等N处", alarm the distinct labels
    joined with "、", time the first alarm's time; the link is the first alarm's.
    """
    first = msg.lines[0] if msg.lines else None
    params = {
        "site": truncate(_clean(msg.site_name), max_len),
        "location": _location(msg, max_len, ELLIPSIS),
        "alarm": truncate(_clean("、".join(distinct_alarms(msg))), max_len),
        "time": truncate(_clean(first.time), max_len) if first else "",
    }
    if msg.link and msg.link_code:
        params["link"] = msg.link if len(msg.link) <= link_max else msg.link_code
    return params


def tts_params(msg: Message, max_len: int = SMS_PARAM_MAX) -> dict[str, str]:
    """Voice template variables site, location, alarm.

    Clipped without an ellipsis: text-to-speech cannot say "…".
    """
    return {
        "site": truncate(_clean(msg.site_name), max_len, ""),
        "location": _location(msg, max_len, ""),
        "alarm": truncate(_clean("、".join(distinct_alarms(msg))), max_len, ""),
    }
