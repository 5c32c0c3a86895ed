"""`AlarmDispatcher`: carries the rule engine's outcomes out, in the order that is the
safety argument of the product.

Everything here is synchronous and in memory:
  1. commands the engine asks for (close the gas) are queued on the MQTT priority lane;
  2. the alarm book records the transition in memory (the API sees it at once);
  3. the store gets the write on its queue; publication to MQTT and the console happens
     only after the commit (`gateway.alarms.fanout`).
Notification, storage and the API never sit between a reading and the shut-off command.

Times: `dispatch` takes wall time, which stamps the book's transitions and the command
records; the engine, called back here for command results and restore, gets both clocks
(`Instant`) and keeps its deadlines on the monotonic one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from gateway.actuate.actuator import Actuator, SentCommand
from gateway.alarms.book import SYSTEM, Action, Alarm, AlarmBook, AlarmWrite
from gateway.alarms.event import AlarmContext
from gateway.alarms.store import AlarmStore
from gateway.config.clocks import Clocks
from gateway.health.metrics import Metrics
from gateway.health.ratelimit import OncePerInterval
from rules.engine import RuleEngine
from rules.model import DeviceRef, Instant, Outcome, Reason

log = logging.getLogger(__name__)


class AlarmDispatcher:
    def __init__(
        self,
        *,
        engine: RuleEngine,
        book: AlarmBook,
        store: AlarmStore,
        actuator: Actuator,
        context: AlarmContext,
        metrics: Metrics,
        decides: Callable[[str], bool],
        clocks: Clocks,
    ) -> None:
        self._engine = engine
        self._book = book
        self._store = store
        self._actuator = actuator
        self._context = context
        self._metrics = metrics
        # False for a site its edge gateway serves (central mode): the edge decides there.
        self._decides = decides
        self._clocks = clocks
        # An ack naming a command never sent costs a device nothing to repeat: one line a
        # minute per device (a made-up one shares a line), the repeats counted in the next.
        self._unmatched_log = OncePerInterval(60.0, max_keys=1_000)

    def dispatch(self, outcome: Outcome, now: float) -> None:
        if outcome:
            # The edge decides for its sites: their alarms arrive mirrored, their devices
            # are commanded from there. The engine still runs here for device status.
            outcome = Outcome(
                [c for c in outcome.changes if self._decides(c.key.site)],
                [c for c in outcome.commands if self._decides(c.ref.site)],
            )
        if not outcome:
            return
        sent: list[tuple[SentCommand, str | None]] = []
        for cmd in outcome.commands:  # 1. the valve (or the breaker) first
            alarm_id = self._book.id_for(cmd.cause)
            s = self._actuator.send(
                cmd.ref,
                cmd.cmd,
                alarm_id=alarm_id,
                requested_by=SYSTEM,
                reason=cmd.reason.value,
                now=now,
            )
            sent.append((s, cmd.detail))
            self._metrics.commands.labels(cmd.cmd.value, "sent").inc()
        for change in outcome.changes:  # 2. the lifecycle, in memory
            self.persist(self._book.apply(change, now))
        for s, why in sent:  # 3. the command on its alarm's timeline (the alarm exists by now)
            if s.alarm_id is not None:
                detail = {
                    "cmd": s.cmd.value,
                    "command_id": s.id,
                    "device": s.ref.device,
                    "reason": s.reason,
                }
                if why is not None:
                    detail["why"] = why
                self.persist(self._book.annotate(s.alarm_id, Action.COMMAND_SENT, now, detail))

    def persist(self, write: AlarmWrite | None, wait: bool = False) -> asyncio.Future[None] | None:
        """Queue a transition for the store, as a frozen event for everything after it."""
        if write is None:
            return None
        self._metrics.alarm_transitions.labels(write.alarm.type.value, write.action.value).inc()
        event = self._context.event(write.alarm, write.action)
        return self._store.submit_alarm(write, event, wait=wait)

    def command_result(
        self, command_id: str, ref: DeviceRef, ok: bool, detail: str | None, now: Instant
    ) -> None:
        """Shared by MQTT acks and Modbus read-backs: record, timeline, then the engine."""
        matched = self._actuator.complete(command_id, ref, ok, detail, now.wall)
        if matched is None:
            self._unmatched(command_id, ref, now)
            return
        sent, result = matched
        self._metrics.commands.labels(sent.cmd.value, "ok" if ok else "failed").inc()
        if sent.alarm_id is not None:
            info: dict[str, Any] = {
                "cmd": sent.cmd.value,
                "command_id": sent.id,
                "device": ref.device,
                "ok": ok,
            }
            if detail:
                info["detail"] = detail
            self.persist(self._book.annotate(sent.alarm_id, Action.COMMAND_RESULT, now.wall, info))
        self.dispatch(self._engine.on_command_result(result, now), now.wall)

    def trip_sent(self, ref: DeviceRef) -> None:
        """A person's `trip` left: the engine starts its confirmation deadline."""
        if self._engine.knows(ref):
            self._engine.on_trip_sent(ref, self._clocks.now())

    def _unmatched(self, command_id: str, ref: DeviceRef, now: Instant) -> None:
        limit = self._unmatched_log
        key: DeviceRef | None = ref if limit.has_room(now.mono, ref) else None
        due = limit.due(now.mono, key)
        if due is None:
            return
        log.warning("result for command %r from %s matches no command we sent%s",
                    command_id[:64], ref, due.suffix)  # fmt: skip
        limit.written(now.mono, key)

    def record(self, alarm_id: str, action: str, detail: dict[str, Any]) -> None:
        """A timeline entry from another part of the gateway (notification attempts)."""
        self.persist(self._book.annotate(alarm_id, Action(action), self._clocks.wall(), detail))

    def restore(self, alarms: Sequence[Alarm]) -> None:
        """Re-seed the engine from alarms reloaded at start-up (re-asserts valve closes)."""
        now = self._clocks.now()
        for a in alarms:
            reason = _reason(a.reason)
            self.dispatch(self._engine.restore(a.key, a.level, reason, now), now.wall)


def _reason(raw: str | None) -> Reason | None:
    try:
        return Reason(raw) if raw else None
    except ValueError:
        return None
