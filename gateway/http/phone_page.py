"""What the phone page of an acknowledgement link shows (`gateway.http.phone` serves it):
server-rendered HTML, Chinese, readable on a 360 px phone, no script, no CDN, with a CSP that
allows only this page's own inline style (by its hash) and forms posting back to it. The
alarm's card (type, severity, place, value, valve, time, state), the answers given, the
buttons, and one page per refusal, each with its status."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape
from typing import Final

from fastapi.responses import HTMLResponse

from gateway.alarms.book import Action, Alarm, AlarmState
from gateway.alarms.event import AlarmSnapshot
from gateway.app.supervisor import Gateway
from gateway.notify.render import alarm_label, severity_label
from gateway.notify.sending import value_text
from gateway.people.links import NOTE_MAX, AckLink, LinkStatus
from gateway.people.model import Person
from rules.model import AlarmType, DeviceRef

STATUS_LABELS: Final = {
    LinkStatus.SEEN: "已知晓",
    LinkStatus.ON_WAY: "正在赶往现场",
    LinkStatus.ON_SITE: "已到场处置",
}

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:17px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",
"WenQuanYi Micro Hei",sans-serif;background:#f4f4f5;color:#18181b}
main{max-width:480px;margin:0 auto;padding:14px}
h1{font-size:21px;margin:4px 0 10px}
.card{background:#fff;border-radius:10px;padding:14px;margin:0 0 12px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card>p:first-child{margin-top:0}
.sev{display:inline-block;padding:1px 8px;border-radius:6px;color:#fff;background:#b91c1c;
font-size:15px}
.sev.major{background:#c2410c}.sev.minor,.sev.warning{background:#a16207}
dl{margin:0;display:grid;grid-template-columns:auto 1fr;gap:4px 12px}
dt{color:#52525b}dd{margin:0;word-break:break-all}
.state{font-weight:bold}.todo{color:#b91c1c}.done{color:#15803d}
.msg{font-size:18px;font-weight:bold}
button{display:block;width:100%;min-height:56px;margin:10px 0 0;border:0;border-radius:10px;
font-size:20px;font-weight:bold;color:#fff;background:#1d4ed8}
button.on_way{background:#c2410c}button.on_site{background:#15803d}
textarea{width:100%;min-height:64px;font-size:17px;padding:8px;border:1px solid #a1a1aa;
border-radius:8px}
label{color:#52525b}
.small{font-size:14px;color:#52525b}
a{color:#1d4ed8}
"""
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the code must not leave in a Referer
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
}


# ------------------------------------------------------------------------------ pages
def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status, headers=HEADERS)


def banner(text: str, css: str) -> str:
    return f'<div class="card" id="result"><p class="msg {css}">{escape(text)}</p></div>'


def notice(title: str, text: str, status: int) -> HTMLResponse:
    return page(title, f'<div class="card"><p class="msg">{escape(text)}</p></div>', status)


def unknown() -> HTMLResponse:
    return notice("链接无效", "此链接不存在或输入有误。请打开短信中的完整链接。", 404)


def expired() -> HTMLResponse:
    return notice("链接已过期", "此链接已过有效期。请登录值班台处理，或使用新短信中的链接。", 410)


def revoked() -> HTMLResponse:
    return notice("链接已停用", "此链接的接收人已被停用或不再负责该场所。", 410)


def superseded() -> HTMLResponse:
    return notice(
        "报警已再次发生",
        "此链接对应的是该报警的上一次发生。请使用新短信中的链接，或登录值班台处理。",
        410,
    )


def too_many(wait_s: float) -> HTMLResponse:
    minutes = int(wait_s // 60) + 1
    return notice("尝试次数过多", f"无效链接过多，请{minutes}分钟后再试。", 429)


@dataclass(frozen=True, slots=True)
class Opened:
    link: AckLink
    person: Person
    alarm: Alarm


def clock_text(gw: Gateway, ts: float | None) -> str:
    iso = gw.clockface.iso(ts) or ""
    return iso[:16].replace("T", " ")


def _state(gw: Gateway, a: Alarm) -> tuple[str, str]:
    """(Chinese state, css class)."""
    if a.state is AlarmState.CLOSED:
        return f"已关闭（{a.closed_by}，{clock_text(gw, a.closed_at)}）", "done"
    if a.state is AlarmState.CLEARED:
        ack = f"，{a.acked_by} 已确认" if a.acked else "，未确认"
        return f"已恢复{ack}", "done" if a.acked else "todo"
    if a.acked:
        return f"已确认（{a.acked_by}，{clock_text(gw, a.acked_at)}）", "done"
    return "未确认", "todo"


def _valve(gw: Gateway, a: Alarm) -> str | None:
    valve = gw.inventory.valve_of.get(DeviceRef(a.site, a.device))
    if valve is None:
        return None
    view = gw.device_view(valve) or {}
    is_open = (view.get("values") or {}).get("open")
    if is_open is not None:  # the valve's own report wins over what was asked of it
        return "已关闭" if not is_open else "开启（未关闭！）"
    for e in reversed(a.timeline):  # a valve that reports only its command results
        detail = e.detail or {}
        if detail.get("cmd") != "close_valve":
            continue
        if e.action is Action.COMMAND_RESULT:
            return "已关闭（阀门已确认）" if detail.get("ok") else "关闭失败！"
        if e.action is Action.COMMAND_SENT:
            return "关闭指令已发出，待阀门确认"
    return "状态未知"


def _alarm_card(gw: Gateway, a: Alarm) -> str:
    site = gw.inventory.sites.get(a.site)
    installed = gw.inventory.get(DeviceRef(a.site, a.device))
    location = installed.config.location if installed is not None else None
    state, css = _state(gw, a)
    rows = [
        ("场所", site.name if site else a.site),
        ("位置", location or a.device),
        ("数值", value_text(AlarmSnapshot.of(a))),
        ("切断阀", _valve(gw, a) if a.type is AlarmType.GAS_LEAK else None),
        ("发生时间", clock_text(gw, a.raised_at)),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows if v is not None)
    sev = a.severity.value
    return (
        f'<div class="card"><p><span class="sev {escape(sev)}">{escape(severity_label(sev))}'
        f"</span> <b>{escape(alarm_label(a.type.value))}</b></p><dl>{items}"
        f'<dt>状态</dt><dd class="state {css}">{escape(state)}</dd></dl></div>'
    )


def _responses(gw: Gateway, link: AckLink) -> str:
    if not link.responses:
        return ""
    items = "".join(
        f"<li>{escape(STATUS_LABELS[r.status])} {escape(clock_text(gw, r.at))}"
        + (f"：{escape(r.note)}" if r.note else "")
        + "</li>"
        for r in link.responses
    )
    return f'<div class="card"><p class="small">您的回复</p><ul>{items}</ul></div>'


def _others(gw: Gateway, a: Alarm) -> str:
    """A grouped SMS links to its first alarm: the site's other unacknowledged alarms are
    named here, to be acknowledged at the console."""
    others = [
        o
        for o in gw.book.open_alarms()
        if o.site == a.site and o.id != a.id and not o.acked and o.state is AlarmState.ACTIVE
    ]
    if not others:
        return ""
    names = "、".join(sorted({alarm_label(o.type.value) for o in others}))
    console = gw.config.notify.public_url or ""
    return (
        f'<div class="card"><p>本场所另有 {len(others)} 处未确认报警（{escape(names)}），'
        f'此链接只确认上面这一处。<a href="{escape(console)}/#alarm={escape(others[0].id)}">'
        "登录值班台处理</a></p></div>"
    )


def _form(code: str) -> str:
    buttons = "".join(
        f'<button class="{s.value}" name="status" value="{s.value}">{label}</button>'
        for s, label in STATUS_LABELS.items()
    )
    return (
        f'<form class="card" method="post" action="/a/{escape(code)}">'
        f'<label for="note">备注（可不填）</label>'
        f'<textarea id="note" name="note" maxlength="{NOTE_MAX}"></textarea>{buttons}</form>'
    )


def alarm_page(gw: Gateway, o: Opened, code: str, banner: str = "") -> HTMLResponse:
    a = o.alarm
    body = banner + _alarm_card(gw, a)
    if a.state is not AlarmState.CLOSED:
        body += _others(gw, a) + _form(code)
    body += _responses(gw, o.link)
    body += f'<p class="small">接收人：{escape(o.person.name)}</p>'
    return page("安全报警", body)
