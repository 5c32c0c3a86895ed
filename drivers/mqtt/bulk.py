"""The bulk lane: the telemetry session and, while it catches up, the live connection beside it.

The bulk session is persistent, so after an outage the broker may have a backlog queued for
it. Before each bulk session connects, a clean-session live connection subscribes to the
same topics, so that what is published from then on reaches the rules at once rather than
behind the backlog; `catchup.CatchUp` (pure) decides what each copy is and when catch-up
ends, this module wires it to the two connections: it opens and closes the live connection,
passes each message through `CatchUp`, watches for the end, and tells the owner when the
rules are being fed history (`on_catchup(True)`) and when they are current again.

Outside catch-up, bulk messages go straight to the inbox, as the control lane's do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from drivers.mqtt.catchup import CatchUp, Delivery, Verdict
from drivers.mqtt.connection import ConnectionLost, ConnectionSettings, MqttConnection
from drivers.mqtt.health import BULK, LaneMonitor
from drivers.mqtt.inbox import Inbox
from drivers.mqtt.wire import Publish

log = logging.getLogger(__name__)


class BulkLane:
    WATCH_INTERVAL_S = 0.2

    def __init__(
        self,
        bulk: ConnectionSettings,
        live: ConnectionSettings,
        inbox: Inbox,
        catchup: CatchUp,
        lanes: LaneMonitor,
        live_catchup: bool,
        on_catchup: Callable[[bool], None],
    ) -> None:
        self.catchup = catchup
        self._inbox = inbox
        self._handle = inbox.handle
        self._lanes = lanes
        self._live_catchup = live_catchup
        self._on_catchup = on_catchup
        self._behind_reported = False
        self._live_task: asyncio.Task[None] | None = None
        self._live_refused = False  # the last live connection failed before it came up
        self.bulk = MqttConnection(bulk, self._on_bulk)
        self.live = MqttConnection(live, self._on_live)

    # -------------------------------------------------------------- receiving
    def _on_live(self, conn: MqttConnection, batch: list[Publish]) -> None:
        if self._inbox.paused:
            return
        catchup = self.catchup
        now = time.monotonic()
        acks: list[int] = []
        for m in batch:
            if m.qos:
                acks.append(m.mid)  # a clean session: the durable copy is the bulk twin
            if catchup.full:
                continue  # not taken here: its bulk twin brings it, in its turn
            key = (m.topic, m.payload)
            if catchup.live(key, now) is Verdict.DUPLICATE:
                continue
            catchup.handled_live(key, now, self._inbox.call(m, Delivery.LIVE, None))
            if catchup.full:
                catchup.end(now, "too many live messages waiting", reached_present=False)
        conn.ack(acks, conn.generation)
        if not catchup.active:
            self._live_done()

    def _on_bulk(self, conn: MqttConnection, batch: list[Publish]) -> None:
        catchup = self.catchup
        if not (catchup.active or catchup.behind or catchup.pending):
            self._handle(conn, batch, Delivery.CURRENT)
            return
        inbox = self._inbox
        if inbox.paused:
            return
        now = time.monotonic()
        acks: list[int] = []
        generation = conn.generation
        window = inbox.window(conn)
        for m in batch:
            verdict, token = catchup.bulk((m.topic, m.payload), now)
            if verdict is not Verdict.DUPLICATE:
                token = inbox.call(m, verdict.delivery, window)
            elif m.qos:
                window.remember(m, token)  # taken live: a DUP copy of it is taken already
            if m.qos:
                inbox.ack_or_hold(acks, token, conn, generation, m.mid)
        conn.ack(acks, generation)
        if not catchup.active:
            self._live_done()
        self._report_behind()

    # ---------------------------------------------------------------- running
    async def run(self) -> None:
        """The bulk session, with a live connection beside it while it catches up."""
        failures = 0
        while True:
            live = await self._open_live() if self._live_catchup else None
            before = self.bulk.sessions_up
            try:
                await self.bulk.session(self._bulk_up)
            except ConnectionLost as exc:
                self._lanes.lane_down(BULK, exc)
            finally:
                self.catchup.end(time.monotonic(), "the bulk session ended")
                self._report_behind()
                self._live_done()
                if live is not None:
                    await asyncio.gather(live, return_exceptions=True)
            failures = 0 if self.bulk.sessions_up != before else failures + 1
            await self._lanes.backoff(BULK, failures)

    async def _open_live(self) -> asyncio.Task[None] | None:
        """Start catch-up: the live connection subscribes before the bulk session connects,
        so that nothing published from now on waits for the backlog (bounded wait)."""
        self.catchup.begin()
        self._behind_reported = True
        self._on_catchup(True)
        ready = asyncio.Event()
        task = asyncio.create_task(self._live_session(ready), name="mqtt-live")
        self._live_task = task
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, timeout=3.0, return_when="FIRST_COMPLETED")
        waiter.cancel()
        return task

    def _bulk_up(self) -> None:
        self.catchup.bulk_connected(time.monotonic())
        self._lanes.set_up(BULK, True)

    async def _live_session(self, ready: asyncio.Event) -> None:
        try:
            await self.live.session(ready.set)
        except ConnectionLost as exc:
            # One that never came up fails with the bulk lane at each attempt of an outage
            # (a broker down, a certificate refused): said once, until one comes up again.
            repeated = self._live_refused and not ready.is_set()
            self._live_refused = not ready.is_set()
            if self.catchup.active:
                if not repeated:
                    log.warning(
                        "MQTT live connection for catch-up failed (%s); readings published "
                        "now wait behind the backlog",
                        exc,
                    )
                self.catchup.end(time.monotonic(), f"live connection: {exc}", reached_present=False)

    def _live_done(self) -> None:
        """Catch-up has ended: close the live connection."""
        task, self._live_task = self._live_task, None
        if task is None or task.done():
            return
        task.cancel()
        c = self.catchup
        log.info(
            "MQTT catch-up done (%s): %d messages live, %d from the backlog, %d duplicates",
            c.end_reason,
            c.live_messages,
            c.backlog_messages,
            c.duplicates,
        )

    async def watch(self) -> None:
        """End catch-up when `CatchUp` says so, also while no message arrives."""
        while True:
            await asyncio.sleep(self.WATCH_INTERVAL_S)
            reason = self.catchup.poll(time.monotonic())
            if reason is not None:
                self.catchup.end(time.monotonic(), reason)
                self._live_done()
            self._report_behind()

    def _report_behind(self) -> None:
        behind = self.catchup.behind
        if behind != self._behind_reported:
            self._behind_reported = behind
            self._on_catchup(behind)
