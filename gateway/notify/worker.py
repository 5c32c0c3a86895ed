"""The notification worker: escalation rows in SQLite, sends with retry and fallback.

Alarm changes arrive after their commit (so nobody is told of an alarm the disk lacks) on an
unbounded queue: the alarm path never waits for a phone. The worker turns them into rows
(`gateway.notify.policy`), writes the rows before acting on them, sends what is due, and writes
the outcome. After a restart the rows are reloaded: what was sent is not sent again, and
what fell due meanwhile goes out at once. A send that was in flight when the process died is
sent again (a second SMS is better than none).

Each send: personal channels (SMS, voice, mail) per recipient, in the step's order, the next
channel being the fallback when one fails; group channels (DingTalk, WeCom, webhook) once per
message. Each channel gets `attempts` tries with exponential backoff while its failure is
recoverable. Every attempt is on the timeline of every alarm in the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from gateway.alarms.book import AlarmState
from gateway.alarms.event import AlarmEvent
from gateway.central.edges import CENTRAL_ALARM_TYPES
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig
from gateway.notify.base import Message, MessageLine, Notifier, Recipient, SendResult
from gateway.notify.policy import AlarmInfo, Batch, Escalations, Send, SendKey, SendState, Why
from gateway.notify.render import ALARM_LABELS, STATE_LABELS

log = logging.getLogger(__name__)

GROUP_KINDS = frozenset({"dingtalk", "wecom", "webhook"})  # one message to a group, no recipient

SCHEMA = """
CREATE TABLE IF NOT EXISTS escalation_sends (
    alarm_id TEXT NOT NULL, occurrence TEXT NOT NULL, step INTEGER NOT NULL,
    repeat INTEGER NOT NULL, site TEXT NOT NULL, severity TEXT NOT NULL,
    due_at REAL NOT NULL, state TEXT NOT NULL, sent_at REAL,
    PRIMARY KEY (alarm_id, occurrence, step, repeat)
);
CREATE INDEX IF NOT EXISTS escalation_pending ON escalation_sends(state, due_at);
CREATE TABLE IF NOT EXISTS maintenance (
    site TEXT NOT NULL, device TEXT NOT NULL, until REAL NOT NULL, by TEXT NOT NULL,
    note TEXT, PRIMARY KEY (site, device)
);
"""

TimelineRecorder = Callable[[str, str, dict[str, Any]], None]  # (alarm id, action, detail)


@dataclass(frozen=True, slots=True)
class Maintenance:
    site: str
    device: str
    until: float
    by: str
    note: str | None


class NotificationWorker:
    def __init__(
        self,
        config: GatewayConfig,
        inventory: Inventory,
        escalations: Escalations,
        notifiers: Mapping[str, Notifier],
        db_path: Path,
        record: TimelineRecorder,
        alarm_view: Callable[[str], dict[str, Any] | None],
        clock: Callable[[], float],
        tick_s: float = 1.0,
    ) -> None:
        self._config = config
        self._inventory = inventory
        self.escalations = escalations
        self._notifiers = notifiers
        self._db_path = db_path
        self._db: aiosqlite.Connection | None = None
        self._record = record
        self._alarm_view = alarm_view
        self._clock = clock
        self._tick_s = tick_s
        self._queue: asyncio.Queue[AlarmEvent] = asyncio.Queue()
        self._wake = asyncio.Event()
        self.maintenance: dict[tuple[str, str], Maintenance] = {}
        self.attempts = 0
        self.failures = 0
        self._inflight: set[SendKey] = set()
        n = config.notify
        self._retry_attempts = n.attempts
        self._retry_backoff = n.retry_backoff

    # ----------------------------------------------------------------- setup
    async def open(self) -> None:
        self._db = await aiosqlite.connect(self._db_path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.executescript(SCHEMA)
        await self._db.commit()
        async with self._db.execute(
            "SELECT alarm_id, occurrence, step, repeat, site, severity, due_at, state, sent_at "
            "FROM escalation_sends WHERE state = 'pending' OR sent_at > ?",
            (self._clock() - 24 * 3600,),
        ) as cur:
            rows = await cur.fetchall()
        self.escalations.load(
            Send(SendKey(r[0], r[1], r[2], r[3]), r[4], r[5], r[6], SendState(r[7]), r[8])
            for r in rows
        )
        async with self._db.execute("SELECT site, device, until, by, note FROM maintenance") as cur:
            for site, device, until, by, note in await cur.fetchall():
                self.maintenance[(site, device)] = Maintenance(site, device, until, by, note)
        pending = sum(1 for s in self.escalations.sends.values() if s.state is SendState.PENDING)
        if pending:
            log.warning("reloaded %d pending notification steps", pending)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def pending(self) -> int:
        return sum(1 for s in self.escalations.sends.values() if s.state is SendState.PENDING)

    @property
    def channel_names(self) -> list[str]:
        return list(self._notifiers)

    def set_notifiers(self, notifiers: Mapping[str, Notifier]) -> None:
        self._notifiers = notifiers

    # ----------------------------------------------------------- alarm input
    def alarm_changed(self, event: AlarmEvent) -> None:
        """Called after the commit of an alarm change; never blocks."""
        self._queue.put_nowait(event)
        self._wake.set()

    def in_maintenance(self, site: str, device: str, now: float) -> Maintenance | None:
        m = self.maintenance.get((site, device))
        return m if m is not None and m.until > now else None

    async def set_maintenance(self, m: Maintenance) -> None:
        assert self._db is not None
        await self._db.execute(
            "INSERT OR REPLACE INTO maintenance (site, device, until, by, note) "
            "VALUES (?, ?, ?, ?, ?)",
            (m.site, m.device, m.until, m.by, m.note),
        )
        await self._db.commit()
        self.maintenance[(m.site, m.device)] = m

    async def clear_maintenance(self, site: str, device: str) -> bool:
        assert self._db is not None
        await self._db.execute(
            "DELETE FROM maintenance WHERE site = ? AND device = ?", (site, device)
        )
        await self._db.commit()
        return self.maintenance.pop((site, device), None) is not None

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            while True:
                for batch in await self.step():
                    # Deliveries run beside the loop: a slow provider retrying must not hold
                    # back the first message about another site's new alarm.
                    tg.create_task(self._deliver(batch), name=f"notify {batch.site}")
                nxt = self.escalations.next_due()
                wait = (
                    self._tick_s
                    if nxt is None
                    else max(0.0, min(self._tick_s, nxt - self._clock()))
                )
                if self._queue.empty():
                    self._wake.clear()
                    waiter = asyncio.ensure_future(self._wake.wait())
                    try:
                        await asyncio.wait({waiter}, timeout=wait)
                    finally:
                        waiter.cancel()

    async def step(self) -> list[Batch]:
        """Apply queued alarm changes and persist them; return the batches now due (and
        mark them in flight). `run` delivers them; tests may call `deliver_due` instead."""
        changed: list[Send] = []
        while not self._queue.empty():
            changed += self._apply(self._queue.get_nowait())
        await self._persist(changed)
        batches = []
        for batch in self.escalations.due(self._clock()):
            fresh = tuple(s for s in batch.sends if s.key not in self._inflight)
            if fresh:
                batches.append(Batch(batch.site, batch.severity, batch.step, fresh))
                self._inflight.update(s.key for s in fresh)
        return batches

    async def deliver_due(self) -> int:
        """One full pass, deliveries awaited: for tests driving a fake clock."""
        batches = await self.step()
        for batch in batches:
            await self._deliver(batch)
        return len(batches)

    async def _deliver(self, batch: Batch) -> None:
        try:
            ok = await self._send_batch(batch)
            await self._persist(self.escalations.done(batch, self._clock(), ok))
        finally:
            self._inflight.difference_update(s.key for s in batch.sends)

    def _apply(self, event: AlarmEvent) -> list[Send]:
        a = event.alarm
        change = event.change.value
        info = AlarmInfo(
            id=a.id,
            site=a.site,
            device=a.device,
            severity=a.severity.value,
            count=a.count,
            raised_at=a.raised_at,
            acked=a.acked,
            closed=a.state is AlarmState.CLOSED,
            own=a.type.value in CENTRAL_ALARM_TYPES,
        )
        if change in ("acked", "closed"):
            sends, why = self.escalations.on_handled(info)
        elif change in ("raised", "returned", "escalated", "repeated"):
            m = self.in_maintenance(info.site, info.device, self._clock())
            sends, why = self.escalations.on_alarm(info, in_maintenance=m is not None)
            if why is Why.SUPPRESSED_MAINTENANCE and m is not None:
                self._record(
                    info.id,
                    "notify_suppressed",
                    {"why": why.value, "maintenance_until": m.until, "by": m.by},
                )
        else:
            return []
        if why in (Why.CANCELLED_ACKED, Why.CANCELLED_CLOSED):
            self._record(info.id, "notify_cancelled", {"why": why.value, "steps": len(sends)})
        return sends

    async def _persist(self, sends: Sequence[Send]) -> None:
        if not sends or self._db is None:
            return
        await self._db.executemany(
            "INSERT INTO escalation_sends (alarm_id, occurrence, step, repeat, site, severity, "
            "due_at, state, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (alarm_id, occurrence, step, repeat) DO UPDATE SET "
            "state = excluded.state, sent_at = excluded.sent_at",
            [
                (
                    s.key.alarm_id,
                    s.key.occurrence,
                    s.key.step,
                    s.key.repeat,
                    s.site,
                    s.severity,
                    s.due_at,
                    s.state.value,
                    s.sent_at,
                )
                for s in sends
            ],
        )
        await self._db.commit()

    # ---------------------------------------------------------------- sending
    async def _send_batch(self, batch: Batch) -> bool:
        views = [v for v in (self._alarm_view(a) for a in batch.alarm_ids) if v is not None]
        if not views:
            return True  # closed and gone: nothing to say
        message = self._message(batch, views)
        step = batch.step
        personal = [c for c in step.channels if self._kind(c) not in GROUP_KINDS]
        group = [c for c in step.channels if self._kind(c) in GROUP_KINDS]
        reached_all = True
        for recipient in self._recipients(batch.site, step.roles):
            if personal and not await self._first_that_works(personal, message, recipient, batch):
                reached_all = False
        for channel in group:
            everyone = Recipient("群", "group", None, None)
            if not await self._first_that_works([channel], message, everyone, batch):
                reached_all = False
        return reached_all

    async def _first_that_works(
        self, channels: Sequence[str], message: Message, to: Recipient, batch: Batch
    ) -> bool:
        for name in channels:
            notifier = self._notifiers.get(name)
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
        attempt = 0

        async def once() -> SendResult:
            nonlocal attempt
            attempt += 1
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

        result = SendResult(False, False, "not attempted")
        try:
            async for tries in AsyncRetrying(
                stop=stop_after_attempt(self._retry_attempts),
                wait=wait_exponential(multiplier=self._retry_backoff, max=60),
                retry=retry_if_result(lambda r: not r.ok and r.recoverable),
            ):
                with tries:
                    result = await once()
                if tries.retry_state.outcome is not None and not tries.retry_state.outcome.failed:
                    tries.retry_state.set_result(result)
        except RetryError:
            return False
        return result.ok

    def _kind(self, channel: str) -> str:
        n = self._notifiers.get(channel)
        return n.kind if n is not None else ""

    def _recipients(self, site_id: str, roles: Sequence[str]) -> list[Recipient]:
        site = self._inventory.sites.get(site_id)
        contacts = list(site.contacts) if site else []
        contacts += list(self._config.notify.bureau_contacts)
        return [
            Recipient(c.name, c.role.value, c.phone, c.email)
            for c in contacts
            if c.role.value in roles
        ]

    def _message(self, batch: Batch, views: Sequence[dict[str, Any]]) -> Message:
        site = self._inventory.sites.get(batch.site)
        lines = []
        for v in views:
            state = "acked" if v["acked"] and v["state"] == "active" else v["state"]
            lines.append(
                MessageLine(
                    location=v.get("location") or v["device"],
                    device=v["device"],
                    alarm=ALARM_LABELS.get(v["type"], v["type"]),
                    value=_value_text(v),
                    time=str(v["raised_at"])[:16].replace("T", " "),
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


def _value_text(v: dict[str, Any]) -> str | None:
    value = v.get("peak") if v.get("peak") is not None else v.get("value")
    if value is None:
        return None
    unit = _UNITS.get(v["type"], "")
    return f"{value:g} {unit}".strip()
