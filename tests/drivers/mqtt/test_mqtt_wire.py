"""The MQTT framer: whole packets out of a stream cut anywhere, and bad streams refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.mqtt.wire import Framer, Other, Oversize, ProtocolError, Publish, pubacks


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_bytes(p: Publish) -> bytes:
    header = 0x30 | (p.qos << 1) | (0x08 if p.dup else 0)
    body = len(p.topic).to_bytes(2, "big") + p.topic
    if p.qos:
        body += p.mid.to_bytes(2, "big")
    body += p.payload
    return bytes([header]) + remaining_length(len(body)) + body


def other_bytes(o: Other) -> bytes:
    return bytes([o.header]) + remaining_length(len(o.body)) + o.body


publishes = st.builds(
    lambda topic, payload, qos, mid, dup: Publish(
        topic, payload, qos, mid if qos else 0, dup and qos > 0
    ),
    st.binary(min_size=1, max_size=40),
    st.binary(max_size=20_000),  # lengths of one, two and three bytes
    st.integers(0, 1),
    st.integers(1, 65535),
    st.booleans(),
)
others = st.builds(
    Other,
    st.sampled_from([0x20, 0x40, 0x90, 0xB0, 0xD0]),  # CONNACK PUBACK SUBACK UNSUBACK PINGRESP
    st.binary(max_size=6),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(publishes, others), max_size=30), st.data())
def test_packets_come_out_whole_and_in_order_however_the_stream_is_cut(
    packets: list[Publish | Other], data: st.DataObject
) -> None:
    stream = b"".join(
        publish_bytes(p) if isinstance(p, Publish) else other_bytes(p) for p in packets
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    framer = Framer()
    got: list[Publish | Other] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        framer.feed(stream[start:cut])
        start = cut
        limit = data.draw(st.integers(1, 5))
        while batch := framer.packets(limit):
            got.extend(batch)
    assert got == packets
    assert framer.buffered == 0


def test_a_partial_packet_waits_for_the_rest() -> None:
    p = Publish(b"safety/s/d/telemetry", b'{"values": {"lel": 1}}', 1, 7, False)
    raw = publish_bytes(p)
    framer = Framer()
    framer.feed(raw[:-1])
    assert framer.packets(10) == []
    assert framer.buffered == len(raw) - 1
    framer.feed(raw[-1:])
    assert framer.packets(10) == [p]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x36\x05\x00\x01t\x00\x01", "QoS 3"),
        (b"\x30\xff\xff\xff\xff\x01", "longer than four bytes"),
        (b"\x32\x05\x00\x01t\x00\x00", "identifier 0"),
        (b"\x30\x02\x00\x00", "empty or truncated topic"),
        (b"\x30\x03\x00\x09t", "empty or truncated topic"),
        (b"\x32\x03\x00\x01t", "without a packet identifier"),
        (b"\x30\x01\x00", "without a topic length"),
    ],
)
def test_a_stream_that_is_not_mqtt_is_refused(raw: bytes, why: str) -> None:
    framer = Framer()
    framer.feed(raw)
    with pytest.raises(ProtocolError, match=why):
        framer.packets(10)


def test_an_oversize_publish_is_skipped_without_being_held_and_the_next_one_comes_whole() -> None:
    framer = Framer(max_packet_bytes=1000)
    big = Publish(b"safety/s/d/telemetry", b"x" * 5000, 1, 42, False)
    after = Publish(b"safety/s/d/event", b'{"event": "pressed"}', 1, 43, False)
    stream = publish_bytes(big) + publish_bytes(after)
    got: list[object] = []
    for start in range(0, len(stream), 700):  # cut mid-body, as the socket does
        framer.feed(stream[start : start + 700])
        assert framer.buffered <= 1400, "the oversize body is never buffered whole"
        got += framer.packets(10)
    assert got == [Oversize(big.topic, 1, 42, len(publish_bytes(big)) - 3), after]


def test_an_oversize_packet_that_is_not_a_publish_is_refused() -> None:
    framer = Framer(max_packet_bytes=1000)
    framer.feed(b"\x90" + remaining_length(5000))
    with pytest.raises(ProtocolError, match="not a PUBLISH"):
        framer.packets(1)


def test_pubacks_are_one_write_in_order() -> None:
    assert pubacks([1, 258, 65535]) == b"\x40\x02\x00\x01\x40\x02\x01\x02\x40\x02\xff\xff"
    assert pubacks([]) == b""
