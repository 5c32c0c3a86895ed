"""WeCom (企业微信) group robot webhook: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...

The key in the URL is the only credential, so the URL is a secret.
"""

from __future__ import annotations

from typing import Literal

import httpx
import orjson

from gateway.notify import render
from gateway.notify.base import Message, Recipient, SendResult, post, robot_outcome

# 45009: over the robot's rate limit (20 messages a minute); -1: system busy.
# 93000 (invalid webhook key) and 40008 (bad message type) are configuration.
RECOVERABLE_ERRCODES = frozenset({45009, -1})
# WeCom's documented limits, in UTF-8 bytes
MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048


class WeComRobot:
    kind = "wecom"

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        webhook: str,
        msgtype: Literal["markdown", "text"] = "markdown",
    ) -> None:
        self.name = name
        self._client = client
        self._webhook = webhook
        self._msgtype = msgtype

    def can_reach(self, to: Recipient) -> bool:
        return True  # posts to a group, whoever the recipient is

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        if self._msgtype == "markdown":
            content = render.markdown(msg, MARKDOWN_MAX_BYTES)
            body: dict[str, object] = {"msgtype": "markdown", "markdown": {"content": content}}
        else:
            content = render.text(msg, TEXT_MAX_BYTES)
            body = {"msgtype": "text", "text": {"content": content}}
        headers = {"Content-Type": "application/json; charset=utf-8"}
        response = await post(self._client, self._webhook, orjson.dumps(body), headers)
        if isinstance(response, SendResult):
            return response
        return robot_outcome(response, RECOVERABLE_ERRCODES)
