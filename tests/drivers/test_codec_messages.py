"""The native JSON codec: events, status, command acks."""

from __future__ import annotations

import json

import pytest

from drivers import codec
from drivers.codec import (
    CommandAck,
    RejectReason,
)
from rules.model import Availability, EventKind
from tests.support.codec import NOW, REF, TS_MS, payload_bytes, rejected


# ------------------------------------------------------------------ events
@pytest.mark.parametrize("kind", list(EventKind))
def test_known_events(kind: EventKind) -> None:
    event = codec.decode_event(REF, payload_bytes({"ts": TS_MS, "event": kind.value}), NOW)
    assert event.ref == REF
    assert event.event is kind
    assert event.ts == pytest.approx(TS_MS / 1000)


def test_event_without_ts_uses_received_time() -> None:
    assert codec.decode_event(REF, b'{"event": "pressed"}', NOW).ts == NOW
    assert codec.decode_event(REF, b'{"event": "pressed", "ts": 1000}', NOW).ts == NOW


@pytest.mark.parametrize("name", ["explosion", "Pressed", "PRESSED", "pressed ", ""])
def test_unknown_event(name: str) -> None:
    err = rejected(codec.decode_event, REF, payload_bytes({"event": name}), NOW)
    assert err.reason is RejectReason.UNKNOWN_EVENT


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", RejectReason.EMPTY),
        (b"pressed", RejectReason.MALFORMED_JSON),
        (b'"pressed"', RejectReason.WRONG_TYPE),
        (b"{}", RejectReason.WRONG_TYPE),
        (b'{"event": 1}', RejectReason.WRONG_TYPE),
        (b'{"event": ["pressed"]}', RejectReason.WRONG_TYPE),
        (b'{"event": "pressed", "ts": "now"}', RejectReason.WRONG_TYPE),
        (b'{"event": "pressed", "ts": Infinity}', RejectReason.NOT_FINITE),
    ],
)
def test_bad_events(payload: bytes, reason: RejectReason) -> None:
    assert rejected(codec.decode_event, REF, payload, NOW).reason is reason


# ------------------------------------------------------------------ status
@pytest.mark.parametrize(
    ("payload", "online"),
    [
        (b"online", True),
        (b"offline", False),
        (b'"online"', True),
        (b'"offline"', False),
        (b"online\n", True),
        (b"  offline ", False),
    ],
)
def test_status(payload: bytes, online: bool) -> None:
    assert codec.decode_status(REF, payload) == Availability(REF, online=online)


@pytest.mark.parametrize(
    "payload",
    [
        b"on",
        b"1",
        b"true",
        b"online offline",
        b'{"status": "online"}',
        b"'online'",
        b'"online',
        b"\xff",
    ],
)
def test_other_status_rejected(payload: bytes) -> None:
    assert rejected(codec.decode_status, REF, payload).reason is RejectReason.WRONG_TYPE


@pytest.mark.parametrize("payload", [b"", b"   ", b"\n"])
def test_empty_status_rejected(payload: bytes) -> None:
    assert rejected(codec.decode_status, REF, payload).reason is RejectReason.EMPTY


# -------------------------------------------------------------------- acks
def test_ack_parsed() -> None:
    assert codec.decode_ack(b'{"id": "cmd-1", "ok": true}') == CommandAck("cmd-1", True, None)
    assert codec.decode_ack(b'{"id": "cmd-2", "ok": false, "detail": "jammed"}') == CommandAck(
        "cmd-2", False, "jammed"
    )
    assert codec.decode_ack(b'{"id": "cmd-3", "ok": true, "detail": 5}').detail is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"ok": true}', RejectReason.WRONG_TYPE),
        (b'{"id": "", "ok": true}', RejectReason.WRONG_TYPE),
        (b'{"id": 7, "ok": true}', RejectReason.WRONG_TYPE),
        (b'{"id": null, "ok": true}', RejectReason.WRONG_TYPE),
        (b'{"id": "cmd-1"}', RejectReason.WRONG_TYPE),
        (b'{"id": "cmd-1", "ok": 1}', RejectReason.WRONG_TYPE),
        (b'{"id": "cmd-1", "ok": "true"}', RejectReason.WRONG_TYPE),
        (b'{"id": "cmd-1", "ok": null}', RejectReason.WRONG_TYPE),
        (b"[]", RejectReason.WRONG_TYPE),
        (b"", RejectReason.EMPTY),
        (b"ok", RejectReason.MALFORMED_JSON),
    ],
)
def test_bad_acks(payload: bytes, reason: RejectReason) -> None:
    assert rejected(codec.decode_ack, payload).reason is reason


def test_encode_round_trips() -> None:
    msg = {"id": "abc", "cmd": "close_valve", "reason": "alarm-1"}
    assert json.loads(codec.encode(msg)) == msg
