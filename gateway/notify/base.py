"""The one interface every notification channel implements, and the values it passes.

The escalation engine builds a `Message` (one or several alarms of one site), picks
`Recipient`s and calls `Notifier.send` once per attempt. Adapters turn every provider or
network failure into a `SendResult` instead of raising, so the engine decides alone
whether to retry (`recoverable`) or fall back to the next channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    role: str  # legal_representative | safety_manager | duty_officer | bureau_duty | other
    phone: str | None  # E.164, e.g. "+8613800000001"
    email: str | None
    login: str | None = None  # the person (`gateway.people`): whose acknowledgement link


@dataclass(frozen=True, slots=True)
class MessageLine:
    location: str  # 一楼厨房
    device: str  # gas-kitchen
    alarm: str  # Chinese alarm label, e.g. 燃气泄漏
    value: str | None  # e.g. "24.5 %LEL"
    time: str  # local time text, e.g. "2026-11-24 14:03"
    state: str  # Chinese state label, e.g. 未处理 / 已确认 / 已恢复


@dataclass(frozen=True, slots=True)
class Message:
    site_id: str
    site_name: str  # e.g. 城区幸福养老服务中心
    severity: str  # critical | major | minor | warning
    alarm_ids: tuple[str, ...]
    lines: tuple[MessageLine, ...]  # one per alarm; grouped messages have several
    # The recipient's own acknowledgement link (SMS, mail; never a group channel), about
    # the first alarm of the message; `link_code` is its code alone (see `render.sms_params`).
    link: str | None = None
    link_code: str | None = None
    console_url: str | None = None  # group channels: the console at the first alarm (login)
    # The first words of every text: an alarm's, or a reminder's (`gateway.reminders`), which
    # rides the same channels and templates but must not read as an alarm.
    title: str = "【安全报警】"


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    recoverable: bool  # a retry (or the next channel) may help: timeouts, 5xx, throttling
    detail: str  # provider's code/message, or the exception text
    provider_ref: str | None = None  # provider's request/message id when it gives one

    @property
    def worth_retrying(self) -> bool:
        """Failed, and the same channel may get through a little later."""
        return not self.ok and self.recoverable


class Notifier(Protocol):
    name: str  # configured channel name, e.g. "sms-aliyun"
    kind: str  # aliyun_sms | tencent_sms | aliyun_voice | dingtalk | wecom | webhook | smtp

    def can_reach(self, to: Recipient) -> bool: ...

    async def send(self, msg: Message, to: Recipient) -> SendResult: ...


# ------------------------------------------------------------------ shared HTTP helpers


async def post(
    client: httpx.AsyncClient, url: str, content: bytes, headers: Mapping[str, str]
) -> httpx.Response | SendResult:
    """One POST; a failure to get any HTTP answer comes back as a `SendResult`.

    The client's own timeout bounds the attempt, so a provider that hangs costs one
    timeout, not the escalation step.
    """
    try:
        return await client.post(url, content=content, headers=dict(headers))
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        # configuration, so no retry; the URL itself stays out of the detail because robot
        # webhook URLs carry their access token and details end up in the alarm timeline
        return SendResult(False, False, f"bad URL: {exc}")
    except httpx.HTTPError as exc:
        return transport_failure(exc)


def transport_failure(exc: Exception) -> SendResult:
    """A request that got no HTTP answer: a retry may well get through."""
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network error"
    text = str(exc)
    detail = f"{kind}: {type(exc).__name__}" + (f": {text}" if text else "")
    return SendResult(False, True, detail)


def status_is_recoverable(status: int) -> bool:
    """5xx and 429 are the provider's momentary trouble; other 4xx are ours."""
    return status >= 500 or status == 429


def json_object(response: httpx.Response) -> Mapping[str, Any] | None:
    """The body as a JSON object, or None (proxies and gateways answer with HTML)."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def body_excerpt(response: httpx.Response, limit: int = 200) -> str:
    text = response.content[:limit].decode("utf-8", "replace")
    return f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}"


def http_failure(response: httpx.Response) -> SendResult:
    """An answer without the provider's own result code: judge by the HTTP status."""
    return SendResult(False, status_is_recoverable(response.status_code), body_excerpt(response))


def robot_outcome(response: httpx.Response, recoverable_codes: frozenset[int]) -> SendResult:
    """DingTalk and WeCom robots answer {"errcode": 0, "errmsg": "ok"}, mostly with HTTP 200."""
    body = json_object(response)
    errcode = body.get("errcode") if body is not None else None
    if body is None or not isinstance(errcode, int):
        return http_failure(response)
    if errcode == 0 and response.is_success:
        return SendResult(True, False, "ok")
    recoverable = errcode in recoverable_codes or status_is_recoverable(response.status_code)
    return SendResult(False, recoverable, f"{errcode}: {body.get('errmsg', '')}")


def e164_to_national(phone: str) -> str:
    """National form of an E.164 number: +8613800000001 -> 13800000001.

    Other countries keep their code, without the "+" (+85291234567 -> 85291234567):
    the form Aliyun wants in PhoneNumbers and CalledNumber.
    """
    digits = phone.strip().removeprefix("+")
    if phone.strip().startswith("+86"):
        return digits[2:]
    return digits


def is_mainland_mobile(phone: str | None) -> bool:
    """+86 and 11 digits: the only numbers Aliyun voice notification can call."""
    return phone is not None and phone.strip().startswith("+86") and len(phone.strip()) == 14
