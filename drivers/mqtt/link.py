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

Acknowledgement: QoS 1 messages are acknowledged (PUBACK) after the handler has run, and a
message that changed an alarm only once the store has committed that change (`durable`):
killed in between, the gateway gets it again from the broker. While the store is failing,
acknowledgements are not held: ingestion must never wait on the disk.

Publishing never waits for the broker: a publication is handed to paho at once, and paho
retries QoS 1 publications over the same session after a reconnect. While the control lane
is down, publications wait here in priority order (commands before alarms before the rest)
and nothing is dropped. Presence: every control connection publishes the `online` message
(retained) and leaves `offline` as its will; a clean stop publishes `offline` last.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.mqtt.catchup import CatchUp, Delivery, Verdict
from drivers.mqtt.connection import ConnectionLost, ConnectionSettings, MqttConnection, Will
from drivers.mqtt.wire import Publish

log = logging.getLogger(__name__)

PRIORITY_COMMAND = 0
PRIORITY_ALARM = 1
PRIORITY_INFO = 2
_LAST = 9  # the clean stop's `offline` presence: after everything else

CONTROL, BULK, LIVE = "control", "bulk", "live"


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
    # Acknowledge after processing (see module docstring). Off only for the demo's embedded
    # broker (amqtt), which keeps no sessions anyway and mishandles QoS 1 delivery: it drops
    # a PUBACK that arrives before it has registered its waiter, then times out. Without,
    # subscriptions are QoS 0.
    manual_acks: bool = True
    presence: Presence | None = None
    live_catchup: bool = True


@dataclass(slots=True)
class LinkHealth:
    """The link as a whole: connected while the control lane (and the bulk lane, if any)
    is up. `reconnects` counts the link's recoveries from an outage, `lane_reconnects` each
    lane's reconnections (a lane can be lost alone)."""

    connected: bool = False
    connected_since: float | None = None
    disconnected_since: float | None = None
    connects: int = 0
    reconnects: int = 0
    failed_attempts: int = 0
    last_error: str | None = None
    lane_reconnects: dict[str, int] = field(default_factory=dict)
    received: int = 0  # handed to the handler (duplicates of catch-up not counted)
    published: int = 0  # acknowledged by the broker (QoS 1) or written (QoS 0)
    lanes: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Publication:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


# Returns None when the message may be acknowledged at once, or a token (the store's write
# sequence) to acknowledge it only once `durable(token)` has been called.
MessageHandler = Callable[[str, bytes, Delivery], int | None]


class MqttLink:
    WATCH_INTERVAL_S = 0.2

    def __init__(
        self,
        settings: MqttSettings,
        handler: MessageHandler,
        on_connection_change: Callable[[bool], None] | None = None,
        hold_acks: Callable[[], bool] = lambda: False,
        on_catchup: Callable[[bool], None] = lambda active: None,
    ) -> None:
        self.settings = settings
        self.health = LinkHealth()
        self.catchup = CatchUp()
        self._handler = handler
        self._on_change = on_connection_change
        self._hold_acks = hold_acks
        self._on_catchup = on_catchup
        self._outbox: list[tuple[int, int, Publication]] = []  # a heap: (priority, seq, pub)
        self._seq = itertools.count()
        self._paused = False
        self._stopping = False
        self._behind_reported = False
        # (token, connection, session generation, packet id) held until durable(token)
        self._unacked: collections.deque[tuple[int, MqttConnection, int, int]] = collections.deque()
        self._up: dict[str, bool] = {}
        self._down_since: dict[str, float] = {}
        self._topics: dict[bytes, str] = {}  # decoded topics, reused: the set is small
        self._live_task: asyncio.Task[None] | None = None
        self.control = self._connection(CONTROL)
        self.bulk = self._connection(BULK) if settings.bulk_subscriptions else None
        self.live = self._connection(LIVE) if settings.bulk_subscriptions else None

    def _connection(self, lane: str) -> MqttConnection:
        s = self.settings
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
        handler = {CONTROL: self._on_control, BULK: self._on_bulk, LIVE: self._on_live}[lane]
        on_published = self._published if lane == CONTROL else None
        return MqttConnection(
            ConnectionSettings(
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
            ),
            handler,
            on_published,
        )

    def _published(self) -> None:
        self.health.published += 1

    # ------------------------------------------------------------ publishing
    def publish(self, pub: Publication, priority: int = PRIORITY_ALARM) -> None:
        """Send, or queue while the control lane is down; returns at once either way."""
        if not self._outbox and self.control.publish(pub.topic, pub.payload, pub.qos, pub.retain):
            return
        heapq.heappush(self._outbox, (priority, next(self._seq), pub))

    def _drain_outbox(self) -> None:
        while self._outbox:
            _, _, pub = self._outbox[0]
            if not self.control.publish(pub.topic, pub.payload, pub.qos, pub.retain):
                return
            heapq.heappop(self._outbox)

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
    def _on_control(self, conn: MqttConnection, batch: list[Publish]) -> None:
        self._handle(conn, batch, Delivery.CURRENT)

    def _on_live(self, conn: MqttConnection, batch: list[Publish]) -> None:
        if self._paused:
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
            catchup.handled_live(key, now, self._call(m, Delivery.LIVE))
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
        if self._paused:
            return
        now = time.monotonic()
        acks: list[int] = []
        generation = conn.generation
        for m in batch:
            verdict, token = catchup.bulk((m.topic, m.payload), now)
            if verdict is not Verdict.DUPLICATE:
                token = self._call(m, verdict.delivery)
            if m.qos:
                self._ack_or_hold(acks, token, conn, generation, m.mid)
        conn.ack(acks, generation)
        if not catchup.active:
            self._live_done()
        self._report_behind()

    def _handle(self, conn: MqttConnection, batch: list[Publish], delivery: Delivery) -> None:
        if self._paused:
            return  # not acknowledged: the broker keeps them for our next session
        acks: list[int] = []
        generation = conn.generation
        for m in batch:
            token = self._call(m, delivery)
            if m.qos:
                self._ack_or_hold(acks, token, conn, generation, m.mid)
        conn.ack(acks, generation)

    def _call(self, m: Publish, delivery: Delivery) -> int | None:
        topic = self._topics.get(m.topic)
        if topic is None:
            topic = m.topic.decode("utf-8", "replace")
            if len(self._topics) < 100_000:
                self._topics[m.topic] = topic
        self.health.received += 1
        return self._handler(topic, m.payload, delivery)

    def _ack_or_hold(
        self, acks: list[int], token: int | None, conn: MqttConnection, gen: int, mid: int
    ) -> None:
        if token is None or not self.settings.manual_acks or not self._hold_acks():
            acks.append(mid)
        else:
            self._unacked.append((token, conn, gen, mid))

    def durable(self, token: int) -> None:
        """Everything up to `token` is on disk: acknowledge the messages that caused it."""
        unacked = self._unacked
        ready: dict[tuple[MqttConnection, int], list[int]] = {}
        while unacked and unacked[0][0] <= token:
            _, conn, gen, mid = unacked.popleft()
            ready.setdefault((conn, gen), []).append(mid)
        for (conn, gen), mids in ready.items():
            conn.ack(mids, gen)

    def pause(self) -> None:
        """Stop taking messages (shutdown): what is not taken stays queued at the broker."""
        self._paused = True

    # ---------------------------------------------------------------- running
    async def run(self) -> None:
        """Connect every lane, serve, reconnect; forever, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._serve(self.control, CONTROL, self._control_up), name="mqtt-ctl")
            if self.bulk is not None:
                tg.create_task(self._bulk_lane(), name="mqtt-bulk")
                tg.create_task(self._watch(), name="mqtt-catchup")

    async def _serve(self, conn: MqttConnection, lane: str, on_up: Callable[[], None]) -> None:
        failures = 0
        while True:
            before = conn.sessions_up
            try:
                await conn.session(on_up)
            except ConnectionLost as exc:
                self._lane_down(lane, exc)
            failures = 0 if conn.sessions_up != before else failures + 1
            await self._backoff(lane, failures)

    async def _backoff(self, lane: str, failures: int) -> None:
        self._set_up(lane, False)
        if self._stopping:
            raise asyncio.CancelledError
        s = self.settings
        delay = min(s.backoff_max_s, s.backoff_initial_s * 2 ** min(failures, 10))
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _control_up(self) -> None:
        presence = self.settings.presence
        if presence is not None:
            self.control.publish(presence.topic, presence.online, 1, True)
        self._drain_outbox()
        self._set_up(CONTROL, True)

    async def _bulk_lane(self) -> None:
        """The bulk session, with a live connection beside it while it catches up."""
        assert self.bulk is not None
        failures = 0
        while True:
            live = await self._open_live() if self.settings.live_catchup else None
            before = self.bulk.sessions_up
            try:
                await self.bulk.session(self._bulk_up)
            except ConnectionLost as exc:
                self._lane_down(BULK, exc)
            finally:
                self.catchup.end(time.monotonic(), "the bulk session ended")
                self._report_behind()
                self._live_done()
                if live is not None:
                    await asyncio.gather(live, return_exceptions=True)
            failures = 0 if self.bulk.sessions_up != before else failures + 1
            await self._backoff(BULK, failures)

    async def _open_live(self) -> asyncio.Task[None] | None:
        """Start catch-up: the live connection subscribes before the bulk session connects,
        so that nothing published from now on waits for the backlog (bounded wait)."""
        if self.live is None:
            return None
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
        self._set_up(BULK, True)

    async def _live_session(self, ready: asyncio.Event) -> None:
        assert self.live is not None
        try:
            await self.live.session(ready.set)
        except ConnectionLost as exc:
            if self.catchup.active:
                log.warning(
                    "MQTT live connection for catch-up failed (%s); readings published now "
                    "wait behind the backlog",
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

    async def _watch(self) -> None:
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

    # ---------------------------------------------------------------- health
    def _set_up(self, lane: str, up: bool) -> None:
        was = self._up.get(lane)
        self._up[lane] = up
        h = self.health
        h.lanes = dict(self._up)
        if up:
            if was is False:
                h.lane_reconnects[lane] = h.lane_reconnects.get(lane, 0) + 1
                log.warning(
                    "MQTT %s lane reconnected to %s:%s after %.1f s",
                    lane,
                    self.settings.host,
                    self.settings.port,
                    time.monotonic() - self._down_since.pop(lane, time.monotonic()),
                )
            h.connects += 1
        lanes = [CONTROL] + ([BULK] if self.bulk is not None else [])
        connected = all(self._up.get(lane) for lane in lanes)
        if connected == h.connected:
            return
        now = time.time()
        h.connected = connected
        if connected:
            if h.disconnected_since is None:
                log.info("MQTT connected to %s:%s", self.settings.host, self.settings.port)
            else:
                h.reconnects += 1
            h.connected_since = now
            h.disconnected_since = None
            h.failed_attempts = 0
        else:
            h.disconnected_since = now
        if self._on_change:
            self._on_change(connected)

    def _lane_down(self, lane: str, exc: Exception) -> None:
        if self._stopping:
            return
        h = self.health
        h.last_error = f"{lane}: {exc}"
        if self._up.get(lane) or lane not in self._down_since:
            log.error(
                "MQTT %s connection to %s:%s lost or refused (%s); retrying with backoff",
                lane,
                self.settings.host,
                self.settings.port,
                exc,
            )
            self._down_since[lane] = time.monotonic()
        else:
            h.failed_attempts += 1

    # ------------------------------------------------------------------ stop
    async def stop(self, grace_s: float = 5.0) -> None:
        """Give queued publications a moment to leave, `offline` last; the caller then
        cancels `run`."""
        presence = self.settings.presence
        if presence is not None:
            self.publish(Publication(presence.topic, presence.offline, retain=True), _LAST)
        deadline = time.monotonic() + grace_s
        while (  # noqa: ASYNC110 - polling a queue length, bounded by the grace period
            self._outbox and self.control.connected and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.02)
        self._stopping = True
        await self.control.close(max(0.0, deadline - time.monotonic()))
