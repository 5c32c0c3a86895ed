"""Incoming messages to the handler, and their acknowledgement once they are safe.

QoS 1 messages are acknowledged (PUBACK) after the handler has run, and a message that
changed an alarm only once the store has committed that change (`durable`): killed in
between, the gateway gets it again from the broker. While the store is failing,
acknowledgements are not held (`hold_acks` says so): ingestion must never wait on the disk.
After `pause` (shutdown) nothing more is taken or acknowledged: the broker keeps it for the
next session.

A message the broker sends again because our PUBACK did not reach it (the connection dropped
in between) is marked DUP and keeps its packet id. Each persistent session remembers its last
`SLOTS` QoS 1 messages taken, by packet id (`TakenWindow`): a DUP copy of one of them is not
handed on again; it is reported (`on_duplicate`) and acknowledged once what the first copy
caused is durable. Brokers that number packets in turn (Mosquitto) thus cover an in-flight
window of up to `SLOTS` messages. A message without DUP is always handed on: it is a first
delivery, even with the bytes of an earlier one. (After a restart the window is empty; the
handler recognises what it stored: `gateway.ingest.redelivery`.)
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from drivers.mqtt.catchup import Delivery
from drivers.mqtt.connection import MqttConnection
from drivers.mqtt.health import LinkHealth
from drivers.mqtt.wire import Publish

# (topic, payload, delivery, packet id, dup): returns None when the message may be
# acknowledged at once, or a token (the store's write sequence) to acknowledge it only once
# `durable(token)` has been called. The packet id (0 for QoS 0) and the DUP flag let the
# handler recognise a copy the broker sends again after a restart.
MessageHandler = Callable[[str, bytes, Delivery, int, bool], int | None]

SLOTS = 4096
_MASK = SLOTS - 1


class TakenWindow:
    """One session's last `SLOTS` QoS 1 messages taken, one slot per packet id modulo
    `SLOTS`, with the ack token each was handled under. Two list stores a message: no
    allocation on the hot path (the `Publish` is kept as it came)."""

    __slots__ = ("messages", "tokens")

    def __init__(self) -> None:
        self.messages: list[Publish | None] = [None] * SLOTS
        self.tokens: list[int | None] = [None] * SLOTS

    def first_copy(self, m: Publish) -> bool:
        """Whether `m` (a DUP copy) was taken before in this session."""
        prev = self.messages[m.mid & _MASK]
        return (
            prev is not None
            and prev.mid == m.mid
            and prev.payload == m.payload
            and prev.topic == m.topic
        )

    def remember(self, m: Publish, token: int | None) -> None:
        i = m.mid & _MASK
        self.messages[i] = m
        self.tokens[i] = token


class Inbox:
    def __init__(
        self,
        handler: MessageHandler,
        health: LinkHealth,
        manual_acks: bool,
        hold_acks: Callable[[], bool],
        on_duplicate: Callable[[str, int], None] = lambda topic, mid: None,
    ) -> None:
        self._handler = handler
        self.health = health
        self._manual_acks = manual_acks
        self._hold_acks = hold_acks
        self._on_duplicate = on_duplicate
        self._windows: dict[MqttConnection, TakenWindow] = {}
        self._durable = 0  # the highest token durable so far
        self.paused = False
        # (token, connection, session generation, packet id) held until durable(token)
        self._unacked: collections.deque[tuple[int, MqttConnection, int, int]] = collections.deque()
        self._topics: dict[bytes, str] = {}  # decoded topics, reused: the set is small

    def current(self, conn: MqttConnection, batch: list[Publish]) -> None:
        """A lane's batch of messages as they are published (the control lane's always)."""
        self.handle(conn, batch, Delivery.CURRENT)

    def handle(self, conn: MqttConnection, batch: list[Publish], delivery: Delivery) -> None:
        if self.paused:
            return  # not acknowledged: the broker keeps them for our next session
        acks: list[int] = []
        generation = conn.generation
        window = self.window(conn)
        for m in batch:
            token = self.call(m, delivery, window)
            if m.qos:
                self.ack_or_hold(acks, token, conn, generation, m.mid)
        conn.ack(acks, generation)

    def window(self, conn: MqttConnection) -> TakenWindow:
        """The window of a persistent session (kept across its reconnects)."""
        window = self._windows.get(conn)
        if window is None:
            window = self._windows[conn] = TakenWindow()
        return window

    def call(self, m: Publish, delivery: Delivery, window: TakenWindow | None) -> int | None:
        """Hand `m` on (unless it is a DUP copy of one taken in this session); its ack token.
        `window` is None for a clean session: nothing on it is delivered again."""
        topic = self._topics.get(m.topic)
        if topic is None:
            topic = m.topic.decode("utf-8", "replace")
            if len(self._topics) < 100_000:
                self._topics[m.topic] = topic
        self.health.received += 1
        _, payload, qos, mid, dup = m  # the hot path: locals, not attribute lookups
        if window is None or not qos:
            return self._handler(topic, payload, delivery, mid, dup)
        i = mid & _MASK
        if dup and window.first_copy(m):
            self._on_duplicate(topic, mid)
            first = window.tokens[i]
            return first if first is not None and first > self._durable else None
        token = self._handler(topic, payload, delivery, mid, dup)
        window.messages[i] = m  # TakenWindow.remember, inline
        window.tokens[i] = token
        return token

    def ack_or_hold(
        self, acks: list[int], token: int | None, conn: MqttConnection, gen: int, mid: int
    ) -> None:
        if token is None or not self._manual_acks or not self._hold_acks():
            acks.append(mid)
        else:
            self._unacked.append((token, conn, gen, mid))

    def durable(self, token: int) -> None:
        """Everything up to `token` is on disk: acknowledge the messages that caused it."""
        self._durable = max(self._durable, token)
        unacked = self._unacked
        ready: dict[tuple[MqttConnection, int], list[int]] = {}
        while unacked and unacked[0][0] <= token:
            _, conn, gen, mid = unacked.popleft()
            ready.setdefault((conn, gen), []).append(mid)
        for (conn, gen), mids in ready.items():
            conn.ack(mids, gen)
