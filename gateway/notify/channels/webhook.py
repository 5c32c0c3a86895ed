"""Generic JSON webhook, for a county bureau platform or an integrator's own system.

POST {"site", "site_name", "severity", "alarm_ids", "alarms": [lines], "text"} with an
optional bearer token. Any 2xx is delivered; 5xx and 429 may pass on a retry, other 4xx
mean the receiver refuses this request and will keep refusing it.
"""

from __future__ import annotations

import dataclasses

import httpx
import orjson

from gateway.notify import render
from gateway.notify.base import (
    Message,
    Recipient,
    SendResult,
    body_excerpt,
    post,
    status_is_recoverable,
)


def payload(msg: Message) -> dict[str, object]:
    return {
        "site": msg.site_id,
        "site_name": msg.site_name,
        "severity": msg.severity,
        "alarm_ids": list(msg.alarm_ids),
        "alarms": [dataclasses.asdict(line) for line in msg.lines],
        "text": render.text(msg),
    }


class JsonWebhook:
    kind = "webhook"

    def __init__(
        self, name: str, client: httpx.AsyncClient, url: str, token: str | None = None
    ) -> None:
        self.name = name
        self._client = client
        self._url = url
        self._token = token

    def can_reach(self, to: Recipient) -> bool:
        return True

    async def send(self, msg: Message, to: Recipient) -> SendResult:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        response = await post(self._client, self._url, orjson.dumps(payload(msg)), headers)
        if isinstance(response, SendResult):
            return response
        ref = response.headers.get("x-request-id")
        if response.is_success:
            return SendResult(True, False, f"HTTP {response.status_code}", ref)
        return SendResult(
            False, status_is_recoverable(response.status_code), body_excerpt(response), ref
        )
