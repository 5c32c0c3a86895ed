"""DingTalk (钉钉) custom group robot, webhook with the signed ("加签") security mode.

Signed mode: `sign = urlencode(base64(HMAC-SHA256(secret, f"{timestamp_ms}\\n{secret}")))`,
appended to the webhook URL as `&timestamp=...&sign=...`; DingTalk refuses a timestamp more
than an hour off. Without a secret the robot must use the keyword or IP mode: every
message starts with 【安全报警】, so "安全报警" works as the keyword.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import quote_plus

import httpx
import orjson

from gateway.notify import render
from gateway.notify.base import Message, Recipient, SendResult, post, robot_outcome

# 130101: more than 20 messages a minute; 410100: throttled; -1: system busy.
# 310000 (sign, keyword or IP check failed) and 300001 (bad token) are configuration.
RECOVERABLE_ERRCODES = frozenset({130101, 410100, -1})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The URL-encoded `sign` parameter for a millisecond timestamp."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    joiner = "&" if "?" in webhook else "?"
    return f"{webhook}{joiner}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


class DingTalkRobot:
    kind = "dingtalk"

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        webhook: str,  # https://oapi.dingtalk.com/robot/send?access_token=...
        secret: str | None = None,  # SEC...: signed mode
        msgtype: Literal["markdown", "text"] = "markdown",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._client = client
        self._webhook = webhook
        self._secret = secret
        self._msgtype = msgtype
        self._clock = clock

    def can_reach(self, to: Recipient) -> bool:
        return True  # posts to a group, whoever the recipient is

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        if self._msgtype == "markdown":
            body: dict[str, object] = {
                "msgtype": "markdown",
                "markdown": {"title": render.subject(msg), "text": render.markdown(msg)},
            }
        else:
            body = {"msgtype": "text", "text": {"content": render.text(msg)}}
        url = self._webhook
        if self._secret:
            url = signed_url(url, self._secret, int(self._clock() * 1000))
        headers = {"Content-Type": "application/json; charset=utf-8"}
        response = await post(self._client, url, orjson.dumps(body), headers)
        if isinstance(response, SendResult):
            return response
        return robot_outcome(response, RECOVERABLE_ERRCODES)
