"""The gateway's broker link: a control lane, a bulk lane and, while catching up, a live lane.

Three connections, because one TCP stream is one queue (DESIGN section 13):

- **control** (persistent session, client id `<id>`): events, statuses, command acks and,
  in central mode, the edges' alarms, command records and presence; and everything the
  gateway publishes (commands, alarms, presence, command records). A button press or a
  command ack never waits behind bulk telemetry, and the PUBACK of our own `close_valve`
  never sits behind a backlog of readings.
- **bulk** (persistent session, client id `<id>-bulk`): telemetry. Read in large chunks and
  handled in batches (`MqttConnection`), so a burst of any size is taken at full rate while
  the loop still serves the control lane, the API and the time-series writer between
  batches.
- **live** (clean session, client id `<id>-live`): telemetry again, only while the bulk
  session drains what the broker queued while we were away; see `catchup`.

This module builds the three lanes' connections from `MqttSettings`, runs them under one
TaskGroup and stops them; the rest has its own module: `inbox` (messages to the handler,
acknowledged after the handler has run and, for one that changed an alarm, once the store
has committed it; a DUP copy of a message the session took is reported, not handed on),
`outbox` (publications waiting, in priority order, while the control lane is down),
`health` (`LinkHealth`, each lane's ups and downs, backoff), `bulk` (the bulk lane and its
catch-up wiring). Presence: every control connection publishes the `online` message
(retained) and leaves `offline` as its will; a clean stop publishes `offline` last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.mqtt.bulk import BulkLane
from drivers.mqtt.catchup import CatchUp
from drivers.mqtt.connection import (
    ConnectionLost,
    ConnectionSettings,
    MqttConnection,
    TlsSettings,
    Will,
)
from drivers.mqtt.health import BULK, CONTROL, LIVE, LaneMonitor, LinkHealth
from drivers.mqtt.inbox import Inbox, MessageHandler
from drivers.mqtt.outbox import (
    PRIORITY_ALARM,
    PRIORITY_COMMAND,
    PRIORITY_INFO,
    PRIORITY_LAST,
    Outbox,
    Publication,
)

__all__ = [
    "PRIORITY_ALARM",
    "PRIORITY_COMMAND",
    "PRIORITY_INFO",
    "LinkHealth",
    "MessageHandler",
    "MqttLink",
    "MqttSettings",
    "Presence",
    "Publication",
    "TlsSettings",
]


@dataclass(frozen=True, slots=True)
class Presence:
    topic: str
    online: bytes
    offline: bytes


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    client_id: str
    subscriptions: tuple[str, ...]  # the control lane's
    bulk_subscriptions: tuple[str, ...] = ()  # telemetry: the bulk (and live) lane's
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # Acknowledge after processing (see `inbox`). Off only for the demo's embedded broker
    # (amqtt), which keeps no sessions anyway and mishandles QoS 1 delivery: it drops a
    # PUBACK that arrives before it has registered its waiter, then times out. Without,
    # subscriptions are QoS 0.
    manual_acks: bool = True
    presence: Presence | None = None
    live_catchup: bool = True
    tls: TlsSettings | None = None  # None: plain TCP


class MqttLink:
    def __init__(
        self,
        settings: MqttSettings,
        handler: MessageHandler,
        on_connection_change: Callable[[bool], None] | None = None,
        hold_acks: Callable[[], bool] = lambda: False,
        on_catchup: Callable[[bool], None] = lambda active: None,
        on_duplicate: Callable[[str, int], None] = lambda topic, mid: None,
    ) -> None:
        self.settings = s = settings
        self._lanes = LaneMonitor(
            s.host,
            s.port,
            (CONTROL, BULK) if s.bulk_subscriptions else (CONTROL,),
            s.backoff_initial_s,
            s.backoff_max_s,
            on_connection_change,
        )
        self.health = self._lanes.health
        self.catchup = CatchUp()
        self._inbox = Inbox(handler, self.health, s.manual_acks, hold_acks, on_duplicate)
        self.control = MqttConnection(
            _lane_settings(s, CONTROL), self._inbox.current, self._published
        )
        self._outbox = Outbox(self.control.publish)
        self._bulk_lane = (
            BulkLane(
                _lane_settings(s, BULK),
                _lane_settings(s, LIVE),
                self._inbox,
                self.catchup,
                self._lanes,
                s.live_catchup,
                on_catchup,
            )
            if s.bulk_subscriptions
            else None
        )
        self.bulk = self._bulk_lane.bulk if self._bulk_lane else None
        self.live = self._bulk_lane.live if self._bulk_lane else None

    def _published(self) -> None:
        self.health.published += 1

    # ------------------------------------------------------------ publishing
    def publish(self, pub: Publication, priority: int = PRIORITY_ALARM) -> None:
        """Send, or queue while the control lane is down; returns at once either way."""
        self._outbox.publish(pub, priority)

    @property
    def outbox_depth(self) -> int:
        """Publications not yet acknowledged by the broker: waiting here or in flight."""
        return len(self._outbox) + self.control.in_flight

    @property
    def oversize_dropped(self) -> int:
        """Messages too large to take (over wire.MAX_PACKET_BYTES), dropped at the socket."""
        return sum(c.oversize_dropped for c in self._connections())

    @property
    def incoming_bytes(self) -> int:
        """Bytes read from the broker and not yet handled."""
        return sum(c.buffered for c in self._connections())

    def _connections(self) -> list[MqttConnection]:
        return [c for c in (self.control, self.bulk, self.live) if c is not None]

    # -------------------------------------------------------------- receiving
    def durable(self, token: int) -> None:
        """Everything up to `token` is on disk: acknowledge the messages that caused it."""
        self._inbox.durable(token)

    def pause(self) -> None:
        """Stop taking messages (shutdown): what is not taken stays queued at the broker."""
        self._inbox.paused = True

    # ---------------------------------------------------------------- running
    async def run(self) -> None:
        """Connect every lane, serve, reconnect; forever, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._serve_control(), name="mqtt-ctl")
            if self._bulk_lane is not None:
                tg.create_task(self._bulk_lane.run(), name="mqtt-bulk")
                tg.create_task(self._bulk_lane.watch(), name="mqtt-catchup")

    async def _serve_control(self) -> None:
        failures = 0
        while True:
            before = self.control.sessions_up
            try:
                await self.control.session(self._control_up)
            except ConnectionLost as exc:
                self._lanes.lane_down(CONTROL, exc)
            failures = 0 if self.control.sessions_up != before else failures + 1
            await self._lanes.backoff(CONTROL, failures)

    def _control_up(self) -> None:
        presence = self.settings.presence
        if presence is not None:
            self.control.publish(presence.topic, presence.online, 1, True)
        self._outbox.drain()
        self._lanes.set_up(CONTROL, True)

    # ------------------------------------------------------------------ stop
    async def stop(self, grace_s: float = 5.0) -> None:
        """Give queued publications a moment to leave, `offline` last; the caller then
        cancels `run`."""
        presence = self.settings.presence
        if presence is not None:
            self.publish(Publication(presence.topic, presence.offline, retain=True), PRIORITY_LAST)
        deadline = time.monotonic() + grace_s
        while (  # noqa: ASYNC110 - polling a queue length, bounded by the grace period
            self._outbox and self.control.connected and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.02)
        self._lanes.stopping = True
        await self.control.close(max(0.0, deadline - time.monotonic()))


def _lane_settings(s: MqttSettings, lane: str) -> ConnectionSettings:
    """One lane's connection: its client id, session kind and subscriptions (each lane
    unsubscribes the others' topics, which an earlier release may have left in its session)."""
    if lane == CONTROL:
        client_id, clean, subs, unsubs = (
            s.client_id, False, s.subscriptions, s.bulk_subscriptions,
        )  # fmt: skip
    elif lane == BULK:
        client_id, clean, subs, unsubs = (
            f"{s.client_id}-bulk", False, s.bulk_subscriptions, s.subscriptions,
        )  # fmt: skip
    else:
        client_id, clean, subs, unsubs = f"{s.client_id}-live", True, s.bulk_subscriptions, ()
    will = (
        Will(s.presence.topic, s.presence.offline)
        if lane == CONTROL and s.presence is not None
        else None
    )
    return ConnectionSettings(
        host=s.host,
        port=s.port,
        client_id=client_id,
        clean_session=clean,
        subscriptions=subs,
        unsubscriptions=unsubs,
        username=s.username,
        password=s.password,
        keepalive_s=s.keepalive_s,
        will=will,
        subscription_qos=1 if s.manual_acks else 0,
        # telemetry may wait a millisecond to be read in bulk; the control lane not
        coalesce_s=0.0 if lane == CONTROL else 0.001,
        tls=s.tls,
    )
