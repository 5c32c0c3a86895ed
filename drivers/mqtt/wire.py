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


class Other(NamedTuple):
    """Any other packet, for paho to handle: the fixed header's first byte and the body."""

    header: int
    body: bytes


Packet = Publish | Other


class Framer:
    """Cuts packets out of a byte stream that arrives in arbitrary chunks."""

    def __init__(self, max_packet_bytes: int = 16 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._max = max_packet_bytes

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as packets."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
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
            # Remaining length: a base-128 varint of at most four bytes.
            length = 0
            shift = 0
            i = pos + 1
            while True:
                if i >= end:
                    length = -1
                    break
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift >= 7 * _MAX_LENGTH_BYTES:
                    raise ProtocolError("remaining length longer than four bytes")
            if length < 0:
                break
            if length > self._max:
                raise ProtocolError(f"a {length}-byte packet exceeds {self._max}")
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
