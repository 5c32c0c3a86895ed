"""The notification worker: turns committed alarm changes into escalation sends and sends
what is due.

Alarm changes arrive after their commit (so nobody is told of an alarm the disk lacks) on an
unbounded queue: the alarm path never waits for a phone. The worker turns them into rows
(`gateway.notify.policy`), writes the rows before acting on them (`gateway.notify.sendlog`),
sends what is due (`gateway.notify.sending`), and writes the outcome. After a restart the
rows are reloaded: what was sent is not sent again, and what fell due meanwhile goes out at
once. A send that was in flight when the process died is sent again (a second SMS is better
than none). A device in maintenance (`gateway.notify.maintenance`) gets no sends at all.

Delays run on the monotonic clock within a run and on stored wall times across a restart
(see `gateway.notify.policy`); maintenance windows are calendar times, read on the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from gateway.alarms.book import AlarmState
from gateway.alarms.event import AlarmEvent
from gateway.central.edges import CENTRAL_ALARM_TYPES
from gateway.config.clocks import Clocks
from gateway.config.inventory import Inventory
from gateway.config.schema import GatewayConfig
from gateway.notify.base import Notifier
from gateway.notify.maintenance import MaintenanceWindows
from gateway.notify.policy import (
    AlarmInfo,
    Batch,
    Escalations,
    Send,
    SendKey,
    SendState,
    Why,
    policies_from_config,
)
from gateway.notify.sending import BatchSender, OnDutyLookup, TimelineRecorder
from gateway.notify.sendlog import SendLog
from gateway.people.links import AckLinks

log = logging.getLogger(__name__)

__all__ = ["NotificationWorker", "TimelineRecorder"]

RELOAD_SENT_S = 24 * 3600.0  # finished sends reloaded at start: they restart grouping windows


class NotificationWorker:
    def __init__(
        self,
        config: GatewayConfig,
        inventory: Inventory,
        escalations: Escalations,
        notifiers: Mapping[str, Notifier],
        db_path: Path,
        windows: MaintenanceWindows,
        record: TimelineRecorder,
        current: Callable[[str], AlarmEvent | None],
        clocks: Clocks,
        tick_s: float = 1.0,
        links: AckLinks | None = None,
        on_duty: OnDutyLookup | None = None,
    ) -> None:
        self.escalations = escalations
        self._sender = BatchSender(
            config, inventory, notifiers, record, current, links, clocks.wall, on_duty
        )
        self._sendlog = SendLog(db_path)
        self._windows = windows  # opened and closed with the send log
        self._record = record
        self._clocks = clocks
        self._tick_s = tick_s
        self._queue: asyncio.Queue[AlarmEvent] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._inflight: set[SendKey] = set()
        self._unsaved: list[Send] = []  # cancelled by a reload, for the next save

    # ----------------------------------------------------------------- setup
    async def open(self) -> None:
        await self._sendlog.open()
        await self._windows.open()
        now = self._clocks.now()
        self.escalations.load(await self._sendlog.load(now.wall - RELOAD_SENT_S), now)
        if self.pending:
            log.warning("reloaded %d pending notification steps", self.pending)

    async def close(self) -> None:
        await self._sendlog.close()
        await self._windows.close()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def pending(self) -> int:
        return sum(1 for s in self.escalations.sends.values() if s.state is SendState.PENDING)

    @property
    def attempts(self) -> int:
        return self._sender.attempts

    @property
    def failures(self) -> int:
        return self._sender.failures

    @property
    def channel_names(self) -> list[str]:
        return list(self._sender.notifiers)

    def reconfigure(self, config: GatewayConfig, notifiers: Mapping[str, Notifier]) -> None:
        """A reloaded configuration's channels and escalation policies; pending steps of
        open alarms keep their due times, and a step the new policy lacks is cancelled."""
        self._sender.reconfigure(config, notifiers)
        n = config.notify
        self._unsaved += self.escalations.replace_policies(policies_from_config(n), n.group_window)
        self._wake.set()

    # ----------------------------------------------------------- alarm input
    def alarm_changed(self, event: AlarmEvent) -> None:
        """Called after the commit of an alarm change; never blocks."""
        self._queue.put_nowait(event)
        self._wake.set()

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
                    else max(0.0, min(self._tick_s, nxt - self._clocks.mono()))
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
        changed, self._unsaved = self._unsaved, []
        while not self._queue.empty():
            changed += self._apply(self._queue.get_nowait())
        await self._sendlog.save(changed)
        batches = []
        now = self._clocks.now()
        for batch in self.escalations.due(now):
            fresh = tuple(s for s in batch.sends if s.key not in self._inflight)
            if fresh:
                batches.append(Batch(batch.site, batch.severity, batch.step, fresh))
                self._inflight.update(s.key for s in fresh)
                # Deliveries run beside this loop: the group's window starts as this one
                # leaves, or an alarm falling due while it is in flight would go alone.
                self.escalations.started(batch, now)
        return batches

    async def deliver_due(self) -> int:
        """One full pass, deliveries awaited: for tests driving a fake clock."""
        batches = await self.step()
        for batch in batches:
            await self._deliver(batch)
        return len(batches)

    async def _deliver(self, batch: Batch) -> None:
        try:
            ok = await self._sender.send(batch)
            await self._sendlog.save(self.escalations.done(batch, self._clocks.now(), ok))
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
            now = self._clocks.now()
            m = self._windows.active(info.site, info.device, now.wall)
            sends, why = self.escalations.on_alarm(info, in_maintenance=m is not None, now=now)
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
