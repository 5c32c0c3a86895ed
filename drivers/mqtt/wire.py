"""MQTT 3.1.1 framing of the incoming byte stream: whole packets out, PUBLISH decoded.

paho-mqtt reads a packet with three `recv` calls and builds an `MQTTMessage` (with locks,
a topic matcher walk and a debug log call) for each: about 35 µs a message, which made the
bare paho subscriber, not the broker, the limit of ingest (bench/burst.py: 25,000 msg/s
against Mosquitto's 80,000). Here the socket is read in large chunks and the packets are cut
out of the buffer; PUBLISH packets become plain tuples, everything else (CONNACK, SUBACK,
PUBACK, PINGRESP) is handed back to paho whole (`MqttConnection`).

Pure: bytes in, packets out; no socket, no clock. Protocol errors raise `ProtocolError`
(the caller drops the connection, as paho would).
"""

from __future__ import annotations

from typing import NamedTuple

PUBLISH = 0x30
PUBACK = 0x40

# A remaining length takes at most four bytes (MQTT 3.1.1 section 2.2.3).
_MAX_LENGTH_BYTES = 4


class ProtocolError(Exception):
    """The broker sent something that is not MQTT 3.1.1: the connection must be dropped."""


class Publish(NamedTuple):
    topic: bytes
    payload: bytes
    qos: int
    mid: int  # 0 for QoS 0
    dup: bool


class Oversize(NamedTuple):
    """A PUBLISH longer than the framer takes: its body was skipped, never held in memory.
    Topic and packet id are kept so that it can be counted and acknowledged (a persistent
    session would otherwise deliver it again at every reconnect)."""

    topic: bytes
    qos: int
    mid: int
    length: int


class Other(NamedTuple):
    """Any other packet, for paho to handle: the fixed header's first byte and the body."""

    header: int
    body: bytes


Packet = Publish | Oversize | Other

# Larger than any payload the gateway accepts (mqtt.max_payload_bytes is at most 1 MiB, and the
# router counts what exceeds it), small enough that a packet in progress always fits in the
# connection's read-ahead.
MAX_PACKET_BYTES = 2 * 1024 * 1024


class Framer:
    """Cuts packets out of a byte stream that arrives in arbitrary chunks."""

    def __init__(self, max_packet_bytes: int = MAX_PACKET_BYTES) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._max = max_packet_bytes
        self._skip = 0  # bytes of an oversize packet still to arrive and be discarded

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as packets."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        if self._pos:
            # Compact before growing: the consumed prefix is dropped at most once per chunk.
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def packets(self, limit: int) -> list[Packet]:
        """Up to `limit` whole packets from what has been fed, in order."""
        buf = self._buf
        end = len(buf)
        pos = self._pos
        out: list[Packet] = []
        append = out.append
        while len(out) < limit:
            if end - pos < 2:
                break
            header = buf[pos]
            decoded = _remaining_length(buf, pos + 1, end)
            if decoded is None:
                break
            length, i = decoded
            if length > self._max:
                oversize = _oversize(header, buf, i, end, length)
                if oversize is None:
                    break  # its topic and packet id have not all arrived yet
                append(oversize)
                have = end - i
                if have >= length:
                    pos = i + length
                else:
                    self._skip = length - have
                    pos = end
                continue
            stop = i + length
            if stop > end:
                break
            if header & 0xF0 == PUBLISH:
                append(_publish(header, bytes(buf[i:stop])))
            else:
                append(Other(header, bytes(buf[i:stop])))
            pos = stop
        self._pos = pos
        if pos == end:
            buf.clear()
            self._pos = 0
        return out

    def clear(self) -> None:
        self._buf.clear()
        self._pos = 0
        self._skip = 0


def _remaining_length(buf: bytearray, i: int, end: int) -> tuple[int, int] | None:
    """A base-128 varint of at most four bytes at `i`: (value, index after it), or None
    while it has not all arrived."""
    length = 0
    shift = 0
    while i < end:
        byte = buf[i]
        i += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, i
        shift += 7
        if shift >= 7 * _MAX_LENGTH_BYTES:
            raise ProtocolError("remaining length longer than four bytes")
    return None


def _oversize(header: int, buf: bytearray, i: int, end: int, length: int) -> Oversize | None:
    if header & 0xF0 != PUBLISH:
        raise ProtocolError(f"a {length}-byte packet that is not a PUBLISH")
    qos = (header >> 1) & 0x03
    if end - i < 2:
        return None
    tlen = (buf[i] << 8) | buf[i + 1]
    need = 2 + tlen + (2 if qos else 0)
    if end - i < need:
        return None
    head = _publish(header, bytes(buf[i : i + need]))
    return Oversize(head.topic, head.qos, head.mid, length)


def _publish(header: int, body: bytes) -> Publish:
    qos = (header >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    if len(body) < 2:
        raise ProtocolError("PUBLISH without a topic length")
    tlen = (body[0] << 8) | body[1]
    start = 2 + tlen
    if tlen == 0 or start > len(body):
        raise ProtocolError("PUBLISH with an empty or truncated topic")
    topic = body[2:start]
    if qos:
        if start + 2 > len(body):
            raise ProtocolError("PUBLISH without a packet identifier")
        mid = (body[start] << 8) | body[start + 1]
        if mid == 0:
            raise ProtocolError("PUBLISH with packet identifier 0")
        return Publish(topic, body[start + 2 :], qos, mid, bool(header & 0x08))
    return Publish(topic, body[start:], 0, 0, False)


def pubacks(mids: list[int]) -> bytes:
    """PUBACK packets for these packet identifiers, in order, as one write."""
    return b"".join(bytes((PUBACK, 2, mid >> 8, mid & 0xFF)) for mid in mids)
