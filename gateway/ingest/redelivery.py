"""Messages the broker delivers again: recognised before the rules and dropped, counted.

The broker sends a QoS 1 message again when it has not had our PUBACK for it: the gateway
crashed, or lost its connection, between taking the message and acknowledging it. Such a
copy is marked DUP (MQTT 3.1.1 section 3.3.1.1: a MUST on re-delivery) and carries the
packet id of the first delivery. A message without DUP is a first delivery and is never
dropped here: a device that sends no timestamp may send the same bytes twice (two presses of
one button), and both count. A DUP copy is a duplicate when a message with the same packet
id, topic and payload was taken before:

- *in this process* (a reconnect): the last `SLOTS` messages of each lane (telemetry, and
  everything else: two MQTT sessions, two packet-id spaces), one slot per packet id modulo
  `SLOTS`. Brokers that number packets in turn (Mosquitto) thus cover an in-flight window of
  up to `SLOTS` messages. The copy's PUBACK waits for the commit the first copy's waits for.
- *before a restart* (a crash between the commit and the PUBACK): a message that caused a
  store write has its key (lane, packet id, a digest of topic and payload) written with the
  last write it caused, in the same transaction (`AlarmStore.note_seen`), so the key is on
  disk exactly when what the message changed is; the keys of the last `WINDOW_S` are loaded
  at start. A message that changed nothing stored needs no key: after a crash the rule engine
  starts afresh, so taking it again changes nothing twice.

A duplicate never reaches the rules; it is counted as rejected, reason `duplicate`.
Costs per message taken: one tuple in a slot (QoS 1 only); the digest only for a message
that caused a write, or a DUP copy after a restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

SLOTS = 4096
_MASK = SLOTS - 1
WINDOW_S = 86_400.0  # keys older than this are not loaded: a redelivery takes a restart

TELEMETRY_LANE = 0
CONTROL_LANE = 1


class SeenLog(Protocol):
    """Where the keys of messages that changed stored state go (the alarm store)."""

    submitted: int
    committed: int

    def note_seen(self, lane: int, mid: int, digest: int, at: float) -> None: ...


@dataclass(frozen=True, slots=True)
class FirstCopy:
    """A duplicate's first copy: acknowledge the duplicate once `token` is durable (None: at
    once, what the first copy changed is on disk)."""

    token: int | None


def lane_of(topic: str) -> int:
    return TELEMETRY_LANE if topic.endswith("/telemetry") else CONTROL_LANE


def digest(topic: str, payload: bytes) -> int:
    """A stable 64-bit digest (persisted: the same in every process, unlike `hash`)."""
    h = hashlib.blake2b(topic.encode(), digest_size=8)
    h.update(b"\x00")
    h.update(payload)
    return int.from_bytes(h.digest(), "big", signed=True)


class Redeliveries:
    def __init__(self, log: SeenLog) -> None:
        self.log = log  # also what the router asks whether a message caused writes
        # per lane, by packet id modulo SLOTS: (packet id, topic, payload, ack token)
        self._slots: tuple[list[tuple[int, str, bytes, int | None] | None], ...] = (
            [None] * SLOTS,
            [None] * SLOTS,
        )
        self._stored: dict[tuple[int, int], int] = {}  # (lane, packet id) -> digest

    def load(self, keys: Iterable[tuple[int, int, int]]) -> None:
        """Keys (lane, packet id, digest) of messages taken before a restart."""
        self._stored = {(lane, mid): d for lane, mid, d in keys}

    def first_copy(self, topic: str, payload: bytes, mid: int) -> FirstCopy | None:
        """For a DUP copy: its first copy, if that was taken; None if it was not."""
        lane = lane_of(topic)
        slot = self._slots[lane][mid & _MASK]
        if slot is not None and slot[0] == mid and slot[1] == topic and slot[2] == payload:
            token = slot[3]
            return FirstCopy(token if token is not None and token > self.log.committed else None)
        stored = self._stored.get((lane, mid))
        if stored is not None and stored == digest(topic, payload):
            return FirstCopy(None)
        return None

    def taken(self, topic: str, payload: bytes, mid: int, token: int | None, now: float) -> None:
        """A message was taken (not a duplicate); `token` if it caused store writes."""
        # On every QoS 1 message: inline, no lane_of() call.
        slots = self._slots[0] if topic.endswith("/telemetry") else self._slots[1]
        slots[mid & _MASK] = (mid, topic, payload, token)
        if token is not None:
            self.log.note_seen(lane_of(topic), mid, digest(topic, payload), now)
