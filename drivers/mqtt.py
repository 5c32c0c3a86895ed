"""The gateway's one MQTT connection: subscribe to device topics, publish commands and alarms.

- Persistent session (clean_session=False, fixed client id) and QoS 1 subscriptions, so
  the broker keeps what devices publish while the gateway restarts.
- Reconnects forever with capped, jittered backoff; an outage is logged once when it
  starts and once when it ends, and is visible in `LinkHealth`.
- Incoming messages go to a synchronous handler, drained in bursts without a task per
  message; the handler is the alarm path and must not block.
- Messages are acknowledged (PUBACK) only after the handler has run, and a message that
  changed an alarm only once the store has committed that change (`durable`). Killed in
  between, the gateway gets the message again from the broker on restart. While the store
  is failing, acknowledgements are not held: ingestion must never wait on the disk.
- Outgoing messages wait in a priority queue (commands before alarm publications) while
  the broker is away, and are sent in order once it is back. Nothing is dropped.
- Presence: with `presence` set, every connection publishes the `online` message (retained)
  and leaves the `offline` one with the broker as its will, so that whoever watches (the
  bureau, through a bridge) learns that this gateway died or lost its broker. A clean stop
  publishes `offline` itself, last of all, since a clean disconnect sends no will.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt

log = logging.getLogger(__name__)

PRIORITY_COMMAND = 0
PRIORITY_ALARM = 1
PRIORITY_INFO = 2
_LAST = 9  # the clean stop's `offline` presence: after everything else


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
    subscriptions: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # Acknowledge after processing (see module docstring). Off only for brokers that
    # mishandle it: amqtt (the demo's embedded broker) drops a PUBACK that arrives before
    # it has registered its waiter, then times out and redelivers.
    manual_acks: bool = True
    presence: Presence | None = None


@dataclass(slots=True)
class LinkHealth:
    connected: bool = False
    connected_since: float | None = None
    disconnected_since: float | None = None
    connects: int = 0
    reconnects: int = 0
    failed_attempts: int = 0
    last_error: str | None = None
    received: int = 0
    published: int = 0


@dataclass(frozen=True, slots=True)
class Publication:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(order=True, slots=True)
class _Queued:
    priority: int
    seq: int
    pub: Publication = field(compare=False)


# Returns None when the message may be acknowledged at once, or a token (the store's write
# sequence) to acknowledge it only once `durable(token)` has been called.
MessageHandler = Callable[[str, bytes], int | None]


class MqttLink:
    def __init__(
        self,
        settings: MqttSettings,
        handler: MessageHandler,
        on_connection_change: Callable[[bool], None] | None = None,
        hold_acks: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self.health = LinkHealth()
        self._handler = handler
        self._on_change = on_connection_change
        self._outbox: asyncio.PriorityQueue[_Queued] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._client: aiomqtt.Client | None = None
        self._stopping = False
        self._paused = False
        self._in_flight = 0
        self._hold_acks = hold_acks
        self._unacked: collections.deque[tuple[int, int, int]] = collections.deque()

    # ------------------------------------------------------------ publishing
    def publish(self, pub: Publication, priority: int = PRIORITY_ALARM) -> None:
        """Queue for sending; returns at once, whether or not the broker is reachable."""
        self._outbox.put_nowait(_Queued(priority, next(self._seq), pub))

    @property
    def outbox_depth(self) -> int:
        return self._outbox.qsize()

    @property
    def incoming_depth(self) -> int:
        client = self._client
        return len(client.messages) if client is not None else 0

    # ---------------------------------------------------------------- running
    async def run(self) -> None:
        """Connect, serve, reconnect; forever, until cancelled."""
        failures = 0
        s = self.settings
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                self._lost(exc)
                # A cancel that lands while the connection fails can come back as MqttError
                # (3.11 drops a CancelledError when a child task failed too): when we are
                # stopping, stop, rather than reconnect through the shutdown.
                if self._stopping:
                    raise asyncio.CancelledError from exc
            failures = 0 if self.health.connected_since else failures
            failures += 1
            delay = min(s.backoff_max_s, s.backoff_initial_s * 2 ** min(failures - 1, 10))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _session(self) -> None:
        s = self.settings
        client = aiomqtt.Client(
            s.host,
            s.port,
            identifier=s.client_id,
            username=s.username,
            password=s.password,
            clean_session=False,
            keepalive=s.keepalive_s,
            timeout=10,
            logger=logging.getLogger("aiomqtt"),
            will=(
                aiomqtt.Will(s.presence.topic, s.presence.offline, qos=1, retain=True)
                if s.presence
                else None
            ),
        )
        # Acknowledge only after processing (and, for alarm changes, after the commit).
        client._client.manual_ack_set(s.manual_acks)
        self.health.connected_since = None
        async with client:
            self._client = client
            for topic in s.subscriptions:
                await client.subscribe(topic, qos=1)
            if s.presence is not None:
                await client.publish(s.presence.topic, s.presence.online, qos=1, retain=True)
            self._connected()
            try:
                # The reader runs in the group's body, not as a child: in 3.11 a child that
                # fails while the body is already waiting in __aexit__ leaves a cancel request
                # on this task that is never withdrawn.
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._write(client), name="mqtt-write")
                    await self._read(client)
            except* aiomqtt.MqttError as group:
                raise group.exceptions[0] from None
            finally:
                self._client = None
                # Unacknowledged messages of this session will be delivered again.
                self._unacked.clear()

    async def _read(self, client: aiomqtt.Client) -> None:
        # aiomqtt's iterator makes a task per message; drain the rest of a burst directly.
        queue: asyncio.Queue[aiomqtt.Message] = client._queue
        async for message in client.messages:
            self._deliver(client, message)
            while True:
                try:
                    self._deliver(client, queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            await asyncio.sleep(0)  # let publishers and the API in between big bursts

    def _deliver(self, client: aiomqtt.Client, m: aiomqtt.Message) -> None:
        if self._paused:
            return  # not acknowledged: the broker keeps it for our next session
        self.health.received += 1
        payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
        token = self._handler(m.topic.value, payload)
        if m.qos == 0 or not self.settings.manual_acks:
            return
        if token is None or not self._hold_acks():
            client._client.ack(m.mid, m.qos)
        else:
            self._unacked.append((token, m.mid, m.qos))

    def durable(self, token: int) -> None:
        """Everything up to `token` is on disk: acknowledge the messages that caused it."""
        client = self._client
        unacked = self._unacked
        while unacked and unacked[0][0] <= token:
            _, mid, qos = unacked.popleft()
            if client is not None:
                client._client.ack(mid, qos)

    def pause(self) -> None:
        """Stop taking messages (shutdown): what is not taken stays queued at the broker."""
        self._paused = True

    async def _write(self, client: aiomqtt.Client) -> None:
        while True:
            item = await self._outbox.get()
            self._in_flight += 1
            try:
                await client.publish(
                    item.pub.topic, item.pub.payload, qos=item.pub.qos, retain=item.pub.retain
                )
            except BaseException:
                self._outbox.put_nowait(item)  # same priority and seq: stays in order
                raise
            finally:
                self._in_flight -= 1
            self.health.published += 1
            # Python 3.11's asyncio.wait_for (inside aiomqtt's publish) loses a cancel that
            # arrives as the PUBACK does; without this check shutdown would wait forever.
            if self._stopping:
                raise asyncio.CancelledError

    def _connected(self) -> None:
        h = self.health
        now = time.time()
        if h.disconnected_since is not None:
            log.warning(
                "MQTT reconnected to %s:%s after %.1fs and %d failed attempts",
                self.settings.host,
                self.settings.port,
                now - h.disconnected_since,
                h.failed_attempts,
            )
            h.reconnects += 1
        else:
            log.info("MQTT connected to %s:%s", self.settings.host, self.settings.port)
        h.connects += 1
        h.connected = True
        h.connected_since = now
        h.disconnected_since = None
        h.failed_attempts = 0
        if self._on_change:
            self._on_change(True)

    def _lost(self, exc: Exception) -> None:
        h = self.health
        h.last_error = str(exc) or type(exc).__name__
        if h.connected or h.disconnected_since is None:
            log.error(
                "MQTT connection to %s:%s lost or refused (%s); retrying with backoff",
                self.settings.host,
                self.settings.port,
                h.last_error,
            )
            h.disconnected_since = time.time()
        else:
            h.failed_attempts += 1
        if h.connected and self._on_change:
            self._on_change(False)
        h.connected = False

    async def stop(self, grace_s: float = 5.0) -> None:
        """Give queued publications a moment to leave, `offline` last; the caller then
        cancels `run`."""
        presence = self.settings.presence
        if presence is not None:
            self.publish(Publication(presence.topic, presence.offline, retain=True), _LAST)
        deadline = time.monotonic() + grace_s
        while (  # noqa: ASYNC110 - polling a queue length, bounded by the grace period
            (self._outbox.qsize() or self._in_flight)
            and self.health.connected
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)
        # From here on a lost cancel (see _write and run) must not keep the link alive.
        self._stopping = True
