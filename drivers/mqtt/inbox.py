"""Incoming messages to the handler, and their acknowledgement once they are safe.

QoS 1 messages are acknowledged (PUBACK) after the handler has run, and a message that
changed an alarm only once the store has committed that change (`durable`): killed in
between, the gateway gets it again from the broker. While the store is failing,
acknowledgements are not held (`hold_acks` says so): ingestion must never wait on the disk.
After `pause` (shutdown) nothing more is taken or acknowledged: the broker keeps it for the
next session.
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
# handler recognise a copy the broker sends again after a crash or a reconnect.
MessageHandler = Callable[[str, bytes, Delivery, int, bool], int | None]


class Inbox:
    def __init__(
        self,
        handler: MessageHandler,
        health: LinkHealth,
        manual_acks: bool,
        hold_acks: Callable[[], bool],
    ) -> None:
        self._handler = handler
        self.health = health
        self._manual_acks = manual_acks
        self._hold_acks = hold_acks
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
        for m in batch:
            token = self.call(m, delivery)
            if m.qos:
                self.ack_or_hold(acks, token, conn, generation, m.mid)
        conn.ack(acks, generation)

    def call(self, m: Publish, delivery: Delivery) -> int | None:
        topic = self._topics.get(m.topic)
        if topic is None:
            topic = m.topic.decode("utf-8", "replace")
            if len(self._topics) < 100_000:
                self._topics[m.topic] = topic
        self.health.received += 1
        return self._handler(topic, m.payload, delivery, m.mid, m.dup)

    def ack_or_hold(
        self, acks: list[int], token: int | None, conn: MqttConnection, gen: int, mid: int
    ) -> None:
        if token is None or not self._manual_acks or not self._hold_acks():
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
