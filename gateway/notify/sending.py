"""Sending one batch of due escalation sends: the message, its recipients, each channel tried
with retries (`gateway.notify.retry`), then the next channel of the step.

Personal channels (SMS, voice, mail) go per recipient, in the step's order, the next channel
being the fallback when one fails; group channels (DingTalk, WeCom, webhook) once per
message. Each channel gets `notify.attempts` tries with exponential backoff while its failure
is recoverable. Every attempt is on the timeline of every alarm in the message. Which batch is
due, and what its outcome changes, is the worker's (`gateway.notify.worker`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from gateway.alarms.book import AlarmState
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.config.clockface import Clockface
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig
from gateway.notify.base import Message, MessageLine, Notifier, Recipient, SendResult
from gateway.notify.policy import Batch
from gateway.notify.render import ALARM_LABELS, STATE_LABELS
from gateway.notify.retry import with_backoff
from gateway.people.links import AckLinks
from gateway.people.model import contact_login

log = logging.getLogger(__name__)

GROUP_KINDS = frozenset({"dingtalk", "wecom", "webhook"})  # one message to a group, no recipient
MAX_RETRY_WAIT_S = 60.0  # a later escalation step is the answer to a longer outage
# The kinds whose text carries a person's acknowledgement link. Not voice: a link cannot be
# heard (the call says what happened; the SMS of the same step carries the link).
LINK_KINDS = frozenset({"aliyun_sms", "tencent_sms", "smtp"})
LINK_ISSUE_TIMEOUT_S = 1.0  # a busy database must not hold back the SMS: it goes without

TimelineRecorder = Callable[[str, str, dict[str, Any]], None]  # (alarm id, action, detail)


class BatchSender:
    """Sends batches through the configured notifiers; counts attempts and failed ones."""

    def __init__(
        self,
        config: GatewayConfig,
        inventory: Inventory,
        notifiers: Mapping[str, Notifier],
        record: TimelineRecorder,
        current: Callable[[str], AlarmEvent | None],
        links: AckLinks | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._links = links
        self._clock = clock
        self._clockface = Clockface(config.gateway.timezone)
        self._inventory = inventory
        self.notifiers = notifiers
        self._record = record
        self._current = current  # an open alarm as it is now; None once closed
        self.attempts = 0
        self.failures = 0

    def reconfigure(self, config: GatewayConfig, notifiers: Mapping[str, Notifier]) -> None:
        """A reloaded configuration: its channels and settings from the next batch on (the
        contacts are read from the inventory at each send)."""
        self._config = config
        self.notifiers = notifiers

    async def send(self, batch: Batch) -> bool:
        """True when every recipient (and every group channel) was reached."""
        alarms = [e for e in (self._current(a) for a in batch.alarm_ids) if e is not None]
        if not alarms:
            return True  # closed and gone: nothing to say
        message = self._message(batch, alarms)
        step = batch.step
        personal = [c for c in step.channels if self._kind(c) not in GROUP_KINDS]
        group = [c for c in step.channels if self._kind(c) in GROUP_KINDS]
        reached_all = True
        linked = any(self._kind(c) in LINK_KINDS for c in personal)
        for recipient in self._recipients(batch.site, step.roles):
            mine = await self._with_link(message, recipient, batch) if linked else message
            if personal and not await self._first_that_works(personal, mine, recipient, batch):
                reached_all = False
        public_url = self._config.notify.public_url
        if public_url and message.alarm_ids:
            # The console asks for a login: a group chat is no place for a personal link.
            message = replace(message, console_url=f"{public_url}/#alarm={message.alarm_ids[0]}")
        for channel in group:
            everyone = Recipient("群", "group", None, None)
            if not await self._first_that_works([channel], message, everyone, batch):
                reached_all = False
        return reached_all

    async def _first_that_works(
        self, channels: Sequence[str], message: Message, to: Recipient, batch: Batch
    ) -> bool:
        for name in channels:
            notifier = self.notifiers.get(name)
            if notifier is None or not notifier.can_reach(to):
                continue
            if await self._with_retries(notifier, message, to, batch):
                return True
        log.error(
            "could not reach %s (%s) about %s through %s",
            to.name,
            to.role,
            batch.alarm_ids,
            channels,
        )
        return False

    async def _with_retries(
        self, notifier: Notifier, message: Message, to: Recipient, batch: Batch
    ) -> bool:
        async def once(attempt: int) -> SendResult:
            self.attempts += 1
            try:
                result = await notifier.send(message, to)
            except Exception as exc:  # an adapter must not raise; if it does, it is a bug
                log.exception("notifier %s raised", notifier.name)
                result = SendResult(False, True, f"internal error: {exc!r}")
            if not result.ok:
                self.failures += 1
            detail = {
                "channel": notifier.name,
                "kind": notifier.kind,
                "to": to.name,
                "role": to.role,
                "attempt": attempt,
                "ok": result.ok,
                "detail": result.detail,
                "grouped": len(batch.alarm_ids),
                "step": batch.sends[0].key.step,
            }
            if result.provider_ref:
                detail["provider_ref"] = result.provider_ref
            for alarm_id in batch.alarm_ids:
                self._record(alarm_id, "notify_attempt", detail)
            return result

        notify = self._config.notify
        result = await with_backoff(
            once,
            again=lambda r: r.worth_retrying,
            attempts=notify.attempts,
            backoff_s=notify.retry_backoff,
            max_wait_s=MAX_RETRY_WAIT_S,
        )
        return result.ok

    async def _with_link(self, message: Message, to: Recipient, batch: Batch) -> Message:
        """The message with `to`'s own link about its first alarm (one link for a grouped
        message: the SMS says 等N处, the page lists the site's other open alarms). Without
        a public URL, a person or a database answering in time, the message as it was."""
        public_url = self._config.notify.public_url
        if self._links is None or not public_url or to.login is None or not message.alarm_ids:
            return message
        alarm_id = message.alarm_ids[0]
        occurrence = next(s.key.occurrence for s in batch.sends if s.key.alarm_id == alarm_id)
        ttl_s = self._config.notify.link_hours * 3600.0
        try:
            code = await asyncio.wait_for(
                asyncio.to_thread(
                    self._links.issue, to.login, alarm_id, occurrence, self._clock(), ttl_s
                ),
                LINK_ISSUE_TIMEOUT_S,
            )
        except Exception:
            log.exception("no acknowledgement link for %s about %s: sent without", to.login,
                          alarm_id)  # fmt: skip
            return message
        return replace(message, link=f"{public_url}/a/{code}", link_code=code)

    def _kind(self, channel: str) -> str:
        n = self.notifiers.get(channel)
        return n.kind if n is not None else ""

    def _recipients(self, site_id: str, roles: Sequence[str]) -> list[Recipient]:
        site = self._inventory.sites.get(site_id)
        contacts = list(site.contacts) if site else []
        contacts += list(self._config.notify.bureau_contacts)
        return [
            Recipient(c.name, c.role.value, c.phone, c.email, contact_login(c))
            for c in contacts
            if c.role.value in roles
        ]

    def _message(self, batch: Batch, alarms: Sequence[AlarmEvent]) -> Message:
        site = self._inventory.sites.get(batch.site)
        lines = []
        for e in alarms:
            a = e.alarm
            state = "acked" if a.acked and a.state is AlarmState.ACTIVE else a.state.value
            raised = self._clockface.iso(a.raised_at) or ""
            lines.append(
                MessageLine(
                    location=e.location or a.device,
                    device=a.device,
                    alarm=ALARM_LABELS.get(a.type.value, a.type.value),
                    value=value_text(a),
                    time=raised[:16].replace("T", " "),
                    state=STATE_LABELS.get(state, state),
                )
            )
        return Message(
            site_id=batch.site,
            site_name=site.name if site else batch.site,
            severity=batch.severity,
            alarm_ids=batch.alarm_ids,
            lines=tuple(lines),
        )


_UNITS = {
    "gas_leak": "%LEL",
    "co": "ppm",
    "residual_current": "mA",
    "overtemperature": "°C",
    "overcurrent": "A",
}


def value_text(a: AlarmSnapshot) -> str | None:
    value = a.peak if a.peak is not None else a.value
    if value is None:
        return None
    unit = _UNITS.get(a.type.value, "")
    return f"{value:g} {unit}".strip()
