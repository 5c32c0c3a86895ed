"""Delivering one message to its recipients: personal channels (SMS, voice, mail) per
recipient in fallback order, group channels (DingTalk, WeCom, webhook) once; each channel
tried `notify.attempts` times with backoff (`gateway.notify.retry`) while its failure is
recoverable. Shared by the alarm escalation (`gateway.notify.sending`) and the closed loop's
reminders (`gateway.reminders`): the same channels, retries and fallbacks, whatever is said.

Each attempt is reported to the caller's `on_attempt` (the alarm's timeline, the reminder's
record); which recipients and what message are the caller's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway.config.schema import NotifySection
from gateway.notify.base import Message, Notifier, Recipient, SendResult
from gateway.notify.retry import with_backoff

log = logging.getLogger(__name__)

GROUP_KINDS = frozenset({"dingtalk", "wecom", "webhook"})  # one message to a group, no recipient
VOICE_KINDS = frozenset({"aliyun_voice"})
MAX_RETRY_WAIT_S = 60.0  # a later escalation step is the answer to a longer outage
EVERYONE = Recipient("群", "group", None, None)


@dataclass(frozen=True, slots=True)
class Attempt:
    channel: str
    kind: str
    to: Recipient
    attempt: int
    result: SendResult


AttemptRecorder = Callable[[Attempt], None]
Personalise = Callable[[Message, Recipient], Awaitable[Message]]


class Delivery:
    """The configured notifiers and how hard to try them; counts attempts and failed ones."""

    def __init__(self, notify: NotifySection, notifiers: Mapping[str, Notifier]) -> None:
        self.notify = notify
        self.notifiers = notifiers
        self.attempts = 0
        self.failures = 0

    def reconfigure(self, notify: NotifySection, notifiers: Mapping[str, Notifier]) -> None:
        self.notify = notify
        self.notifiers = notifiers

    def kind(self, channel: str) -> str:
        n = self.notifiers.get(channel)
        return n.kind if n is not None else ""

    def is_group(self, channel: str) -> bool:
        return self.kind(channel) in GROUP_KINDS

    async def deliver(
        self,
        message: Message,
        recipients: Sequence[Recipient],
        channels: Sequence[str],
        on_attempt: AttemptRecorder,
        personalise: Personalise | None = None,
        group_message: Message | None = None,
    ) -> bool:
        """True when every recipient, and every group channel, was reached. `personalise`
        gives a recipient their own text (a phone link); `group_message` is what a group
        chat is sent (default: `message`)."""
        personal = [c for c in channels if not self.is_group(c)]
        group = [c for c in channels if self.is_group(c)]
        reached_all = True
        if personal:
            for recipient in recipients:
                mine = await personalise(message, recipient) if personalise else message
                if not await self._first_that_works(personal, mine, recipient, on_attempt):
                    reached_all = False
        for channel in group:
            to_group = group_message or message
            if not await self._first_that_works([channel], to_group, EVERYONE, on_attempt):
                reached_all = False
        return reached_all

    async def _first_that_works(
        self,
        channels: Sequence[str],
        message: Message,
        to: Recipient,
        on_attempt: AttemptRecorder,
    ) -> bool:
        for name in channels:
            notifier = self.notifiers.get(name)
            if notifier is None or not notifier.can_reach(to):
                continue
            if await self._with_retries(notifier, message, to, on_attempt):
                return True
        log.error(
            "could not reach %s (%s) about %s through %s",
            to.name,
            to.role,
            message.alarm_ids or message.site_id,
            channels,
        )
        return False

    async def _with_retries(
        self, notifier: Notifier, message: Message, to: Recipient, on_attempt: AttemptRecorder
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
            on_attempt(Attempt(notifier.name, notifier.kind, to, attempt, result))
            return result

        result = await with_backoff(
            once,
            again=lambda r: r.worth_retrying,
            attempts=self.notify.attempts,
            backoff_s=self.notify.retry_backoff,
            max_wait_s=MAX_RETRY_WAIT_S,
        )
        return result.ok


def unique(recipients: Sequence[Recipient]) -> list[Recipient]:
    """Each person once: the same phone (or mail, or login) named twice, by two roles or by a
    contact and the roster, is called once."""
    seen: set[str] = set()
    out = []
    for r in recipients:
        keys = {k for k in (r.phone and f"p:{r.phone}", r.email and f"e:{r.email}",
                            r.login and f"l:{r.login}") if k}  # fmt: skip
        if keys & seen:
            continue
        seen |= keys
        out.append(r)
    return out
