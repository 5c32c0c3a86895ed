"""The inbox's session window (issue 10): a DUP copy of a message the session took is not
handed on again, and is acknowledged once what its first copy caused is durable. Pure: a stub
connection records the PUBACKs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from drivers.mqtt.catchup import Delivery
from drivers.mqtt.connection import MqttConnection
from drivers.mqtt.health import LinkHealth
from drivers.mqtt.inbox import SLOTS, Inbox
from drivers.mqtt.wire import Publish

PRESS = b"safety/xingfu/btn-lobby/event"
BODY = b'{"event": "pressed"}'


@dataclass(eq=False)  # hashable by identity, as a connection is
class Conn:
    generation: int = 1
    acked: list[int] = field(default_factory=list)

    def ack(self, mids: list[int], generation: int) -> None:
        self.acked += mids


@dataclass
class Rig:
    tokens: dict[int, int | None] = field(default_factory=dict)  # packet id -> token to return
    handled: list[tuple[str, int, bool]] = field(default_factory=list)
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    conn: Conn = field(default_factory=Conn)
    inbox: Any = None

    def __post_init__(self) -> None:
        self.inbox = Inbox(
            self.handler,
            LinkHealth(),
            manual_acks=True,
            hold_acks=lambda: True,
            on_duplicate=lambda topic, mid: self.duplicates.append((topic, mid)),
        )

    def handler(
        self, topic: str, payload: bytes, delivery: Delivery, mid: int, dup: bool
    ) -> int | None:
        self.handled.append((topic, mid, dup))
        return self.tokens.get(mid)

    def deliver(self, *messages: Publish) -> None:
        self.inbox.handle(cast(MqttConnection, self.conn), list(messages), Delivery.CURRENT)


def publish(mid: int, payload: bytes = BODY, dup: bool = False) -> Publish:
    return Publish(PRESS, payload, 1, mid, dup)


def test_a_dup_copy_of_a_message_taken_is_acknowledged_not_handled_again() -> None:
    rig = Rig()
    rig.deliver(publish(7))
    rig.deliver(publish(7, dup=True))
    assert [m for _, m, _ in rig.handled] == [7]
    assert rig.duplicates == [("safety/xingfu/btn-lobby/event", 7)]
    assert rig.conn.acked == [7, 7]


def test_only_a_dup_copy_with_the_same_packet_id_and_bytes_is_a_duplicate() -> None:
    rig = Rig()
    rig.deliver(publish(7))
    rig.deliver(publish(7))  # no DUP: a first delivery (the same bytes: a second press)
    rig.deliver(publish(8, dup=True))  # DUP, but not a packet taken
    rig.deliver(publish(7, b'{"event": "smoke"}', dup=True))
    assert len(rig.handled) == 4
    assert rig.duplicates == []


def test_a_duplicate_waits_for_the_commit_its_first_copy_waits_for() -> None:
    rig = Rig(tokens={9: 5})
    rig.deliver(publish(9))
    rig.deliver(publish(9, dup=True))
    assert rig.conn.acked == []  # both wait for write 5
    rig.inbox.durable(5)
    assert rig.conn.acked == [9, 9]
    rig.deliver(publish(9, dup=True))  # once durable: acknowledged at once
    assert rig.conn.acked == [9, 9, 9]


def test_the_window_holds_the_last_slots_packet_ids() -> None:
    rig = Rig()
    rig.deliver(publish(1))
    rig.deliver(publish(SLOTS + 1))  # the same slot, a later packet id
    rig.deliver(publish(SLOTS + 1, dup=True))
    assert rig.duplicates == [("safety/xingfu/btn-lobby/event", SLOTS + 1)]
    rig.deliver(publish(1, dup=True))  # forgotten: handled again (at least once)
    assert [m for _, m, _ in rig.handled] == [1, SLOTS + 1, 1]
