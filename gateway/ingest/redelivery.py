"""Messages the broker delivers again after a crash: recognised before the rules, counted.

The broker sends a QoS 1 message again when it has not had our PUBACK for it. Such a copy is
marked DUP (MQTT 3.1.1 section 3.3.1.1: a MUST on re-delivery) and keeps the packet id of the
first delivery. A message without DUP is a first delivery and is never dropped: a device that
sends no timestamp may send the same bytes twice (two presses of one button), and both count.

- *After a reconnect* the MQTT link recognises a DUP copy of a message its session took
  (`drivers.mqtt.inbox.TakenWindow`, by packet id, topic and payload) and reports it
  (`MessageRouter.duplicate`); it never reaches the router's rules.
- *After a crash* (between the commit and the PUBACK) that memory is gone, so a message that
  caused a store write has its key (lane, packet id, a digest of topic and payload) written
  with the last write it caused, in the same transaction (`AlarmStore.note_seen`): the key is
  on disk exactly when what the message changed is, and the PUBACK follows that commit. The
  keys of the last `WINDOW_S` are loaded at start; a DUP copy whose key is among them is a
  duplicate. A message that changed nothing stored needs no key: after a crash the rule
  engine starts afresh, so taking it again changes nothing twice.

Costs: nothing on a message that caused no write and is not DUP; a digest (about 1 µs) for a
message that caused a write, or a DUP copy after a restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

WINDOW_S = 86_400.0  # keys older than this are not loaded: a redelivery takes a restart

# Two MQTT sessions, two packet-id spaces: telemetry comes on the bulk lane, the rest on
# the control lane.
TELEMETRY_LANE = 0
CONTROL_LANE = 1


class SeenLog(Protocol):
    """Where the keys of messages that changed stored state go (the alarm store)."""

    submitted: int

    def note_seen(self, lane: int, mid: int, digest: int, at: float) -> None: ...


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
        self._stored: dict[tuple[int, int], int] = {}  # (lane, packet id) -> digest

    def load(self, keys: Iterable[tuple[int, int, int]]) -> None:
        """Keys (lane, packet id, digest) of messages that caused writes before a restart."""
        self._stored = {(lane, mid): d for lane, mid, d in keys}

    def stored(self, topic: str, payload: bytes, mid: int) -> bool:
        """Whether a DUP copy is of a message whose changes were stored before a restart."""
        if not self._stored:
            return False
        found = self._stored.get((lane_of(topic), mid))
        return found is not None and found == digest(topic, payload)

    def caused_writes(self, topic: str, payload: bytes, mid: int, now: float) -> None:
        """The message just handled caused the store's last writes: its key goes with them."""
        self.log.note_seen(lane_of(topic), mid, digest(topic, payload), now)
