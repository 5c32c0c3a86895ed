"""Sending one batch of due escalation sends: the message, and its recipients — the contacts
of the step's roles, and for `on_duty` / `bureau_on_duty` whoever the duty roster has on duty
now. How each is reached (channels in fallback order, retries, group chats once) is
`gateway.notify.delivery`'s; every attempt is on the timeline of every alarm in the message.
Which batch is due, and what its outcome changes, is the worker's (`gateway.notify.worker`).
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
from gateway.config.schema import Addressee, GatewayConfig
from gateway.notify.base import Message, MessageLine, Notifier, Recipient
from gateway.notify.delivery import Attempt, Delivery, unique
from gateway.notify.policy import Batch
from gateway.notify.render import ALARM_LABELS, STATE_LABELS
from gateway.people.links import AckLinks
from gateway.people.model import contact_login

log = logging.getLogger(__name__)

# The kinds whose text carries a person's acknowledgement link. Not voice: a link cannot be
# heard (the call says what happened; the SMS of the same step carries the link).
LINK_KINDS = frozenset({"aliyun_sms", "tencent_sms", "smtp"})
LINK_ISSUE_TIMEOUT_S = 1.0  # a busy database must not hold back the SMS: it goes without

TimelineRecorder = Callable[[str, str, dict[str, Any]], None]  # (alarm id, action, detail)
# Who is on duty now at a site (None: at the bureau), read from the roster in a worker thread.
OnDutyLookup = Callable[[str | None], Sequence[Recipient]]
ON_DUTY = Addressee.ON_DUTY.value  # an escalation step's address: the site's people on duty
BUREAU_ON_DUTY = Addressee.BUREAU_ON_DUTY.value  # the bureau's people on duty now
ROSTER_TIMEOUT_S = 1.0  # a busy database must not hold back the call: the contacts are told


class BatchSender:
    """Sends batches through the configured notifiers (`gateway.notify.delivery`)."""

    def __init__(
        self,
        config: GatewayConfig,
        inventory: Inventory,
        notifiers: Mapping[str, Notifier],
        record: TimelineRecorder,
        current: Callable[[str], AlarmEvent | None],
        links: AckLinks | None = None,
        clock: Callable[[], float] = time.time,
        on_duty: OnDutyLookup | None = None,
    ) -> None:
        self._config = config
        self._links = links
        self._clock = clock
        self._clockface = Clockface(config.gateway.timezone)
        self._inventory = inventory
        self.delivery = Delivery(config.notify, notifiers)
        self._record = record
        self._current = current  # an open alarm as it is now; None once closed
        self._on_duty = on_duty

    @property
    def notifiers(self) -> Mapping[str, Notifier]:
        return self.delivery.notifiers

    @property
    def attempts(self) -> int:
        return self.delivery.attempts

    @property
    def failures(self) -> int:
        return self.delivery.failures

    def reconfigure(self, config: GatewayConfig, notifiers: Mapping[str, Notifier]) -> None:
        """A reloaded configuration: its channels and settings from the next batch on (the
        contacts are read from the inventory at each send)."""
        self._config = config
        self.delivery.reconfigure(config.notify, notifiers)

    async def send(self, batch: Batch) -> bool:
        """True when every recipient (and every group channel) was reached."""
        alarms = [e for e in (self._current(a) for a in batch.alarm_ids) if e is not None]
        if not alarms:
            return True  # closed and gone: nothing to say
        message = self._message(batch, alarms)
        step = batch.step
        linked = any(
            self.delivery.kind(c) in LINK_KINDS
            for c in step.channels
            if not self.delivery.is_group(c)
        )
        public_url = self._config.notify.public_url
        group_message = message
        if public_url and message.alarm_ids:
            # The console asks for a login: a group chat is no place for a personal link.
            group_message = replace(
                message, console_url=f"{public_url}/#alarm={message.alarm_ids[0]}"
            )

        async def personalise(m: Message, to: Recipient) -> Message:
            return await self._with_link(m, to, batch)

        def on_attempt(a: Attempt) -> None:
            detail = {
                "channel": a.channel,
                "kind": a.kind,
                "to": a.to.name,
                "role": a.to.role,
                "attempt": a.attempt,
                "ok": a.result.ok,
                "detail": a.result.detail,
                "grouped": len(batch.alarm_ids),
                "step": batch.sends[0].key.step,
            }
            if a.result.provider_ref:
                detail["provider_ref"] = a.result.provider_ref
            for alarm_id in batch.alarm_ids:
                self._record(alarm_id, "notify_attempt", detail)

        recipients = await recipients_of(
            self._inventory, self._config, batch.site, step.roles, self._on_duty
        )
        return await self.delivery.deliver(
            message,
            recipients,
            step.channels,
            on_attempt,
            personalise=personalise if linked else None,
            group_message=group_message,
        )

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


async def recipients_of(
    inventory: Inventory,
    config: GatewayConfig,
    site_id: str | None,
    roles: Sequence[str],
    on_duty: OnDutyLookup | None,
) -> list[Recipient]:
    """The site's contacts and the bureau's in `roles`, each person once; for `on_duty` and
    `bureau_on_duty`, whoever the roster has on duty now (`gateway.duty.oncall`). A roster
    that cannot be read in time, or has nobody on it, falls back to the duty officers
    configured as contacts: an empty roster must never mean that nobody is told."""
    wanted = set(roles)
    rostered: list[Recipient] = []
    for addressee, scope, fallback in (
        (ON_DUTY, site_id, "duty_officer"),
        (BUREAU_ON_DUTY, None, "bureau_duty"),
    ):
        if addressee not in wanted:
            continue
        found = await _rostered(on_duty, scope) if (scope or addressee == BUREAU_ON_DUTY) else []
        if found:
            rostered += found
        else:
            wanted.add(fallback)
    site = inventory.sites.get(site_id) if site_id else None
    contacts = list(site.contacts) if site else []
    contacts += list(config.notify.bureau_contacts)
    configured = [
        Recipient(c.name, c.role.value, c.phone, c.email, contact_login(c))
        for c in contacts
        if c.role.value in wanted
    ]
    return unique(rostered + configured)


async def _rostered(on_duty: OnDutyLookup | None, scope: str | None) -> list[Recipient]:
    if on_duty is None:
        return []
    try:
        return list(await asyncio.wait_for(asyncio.to_thread(on_duty, scope), ROSTER_TIMEOUT_S))
    except Exception:
        log.exception(
            "duty roster of %s not read: the configured duty officers are told",
            scope or "the bureau",
        )
        return []


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
