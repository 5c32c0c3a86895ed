"""The mirror's boundary (central mode): an edge's alarm message parsed strictly into
`MirroredAlarm`, and bound to the key of the alarm it names. Pure: no broker, no clock."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gateway.alarms.book import Action, Alarm, AlarmBook, AlarmState
from gateway.alarms.mirror import ForeignAlarm, mirror
from gateway.alarms.wire import alarm_json
from gateway.central.mirrored import MirroredAlarm
from gateway.config.clockface import Clockface
from rules.model import AlarmKey, AlarmType, Severity

CLOCK = Clockface("Asia/Shanghai")
T0 = 1_795_000_000.0


def _alarm(alarm_id: str, site: str, device: str, type_: AlarmType, **kw: Any) -> Alarm:
    a = Alarm(alarm_id, site, device, type_, Severity.CRITICAL, AlarmState.ACTIVE, T0, **kw)
    a.updated_at = T0
    return a


def _wire(a: Alarm, change: str = "raised", **over: Any) -> dict[str, Any]:
    out = alarm_json(a, CLOCK, timeline=False, location="一楼厨房")
    out |= {"maintenance": False, "change": change}
    out.update(over)
    return out


def _parse(msg: dict[str, Any]) -> MirroredAlarm:
    return MirroredAlarm.model_validate_json(orjson.dumps(msg))


EDGE_GAS = _alarm("e1", "xingfu", "gas-kitchen", AlarmType.GAS_LEAK, value=30.0, peak=31.5)


def test_an_edge_alarm_round_trips_into_the_typed_snapshot() -> None:
    a = copy.deepcopy(EDGE_GAS)
    a.acked, a.acked_by, a.acked_at, a.count = True, "王值班", T0 + 60, 3
    event = _parse(_wire(a, "acked")).event(T0 + 99)
    snap = event.alarm
    assert snap.id == "e1"
    assert snap.key == AlarmKey("xingfu", "gas-kitchen", AlarmType.GAS_LEAK)
    assert (snap.severity, snap.state, event.change) == (
        Severity.CRITICAL,
        AlarmState.ACTIVE,
        Action.ACKED,
    )
    assert (snap.value, snap.peak, snap.count, snap.acked, snap.acked_by) == (
        30.0,
        31.5,
        3,
        True,
        "王值班",
    )
    assert snap.raised_at == T0 and snap.acked_at == T0 + 60 and snap.updated_at == T0
    assert snap.closed_at is None and snap.disposition is None


def test_change_defaults_to_updated() -> None:
    msg = _wire(EDGE_GAS)
    del msg["change"]
    assert _parse(msg).change is Action.UPDATED


@pytest.mark.parametrize(
    ("field", "bad", "where"),
    [
        ("acked_by", {"x": 1}, "acked_by"),
        ("id", [1], "id"),
        ("id", "", "id"),
        ("id", "x" * 101, "id"),
        ("count", "abc", "count"),
        ("count", "3", "count"),  # strict: no string-to-int coercion
        ("count", 0, "count"),
        ("count", 2.5, "count"),
        ("acked", "yes", "acked"),
        ("value", "30", "value"),
        ("value", 1e999, "value"),  # orjson writes inf as null: see the literal test below
        ("type", "gas", "type"),
        ("type", "edge_offline", "type"),  # the bureau's own alarm, never the edge's
        ("severity", "urgent", "severity"),
        ("state", "open", "state"),
        ("change", "deleted", "change"),
        ("disposition", "whatever", "disposition"),
        ("site", "xingfu/#", "site"),
        ("device", None, "device"),
        ("raised_at", None, "raised_at"),
        ("raised_at", "2026-11-25T10:00:00", "raised_at"),  # no offset
        ("raised_at", 1795000000, "raised_at"),
        ("acked_at", "yesterday", "acked_at"),
        ("note", "n" * 2001, "note"),
    ],
)
def test_a_malformed_field_is_refused_with_its_path(field: str, bad: Any, where: str) -> None:
    msg = _wire(EDGE_GAS, **{field: bad})
    if bad == 1e999:
        raw = orjson.dumps(msg).replace(b'"value":null', b'"value":1e999')
        with pytest.raises(ValidationError) as err:
            MirroredAlarm.model_validate_json(raw)
    else:
        with pytest.raises(ValidationError) as err:
            _parse(msg)
    assert err.value.errors()[0]["loc"][0] == where


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_non_finite_value_is_refused(literal: bytes) -> None:
    raw = orjson.dumps(_wire(EDGE_GAS)).replace(b'"value":30.0', b'"value":' + literal)
    with pytest.raises(ValidationError) as err:
        MirroredAlarm.model_validate_json(raw)
    assert err.value.errors()[0]["loc"][0] == "value"


def test_a_missing_field_is_refused() -> None:
    msg = _wire(EDGE_GAS)
    del msg["severity"]
    with pytest.raises(ValidationError) as err:
        _parse(msg)
    assert err.value.errors()[0]["loc"] == ("severity",)


# ------------------------------------------------------------------ the binding
def _book() -> tuple[AlarmBook, Alarm, Alarm]:
    """A book holding the bureau's own alarm at anning and a mirrored one at xingfu."""
    book = AlarmBook()
    own = _alarm("own1", "anning", "btn-a", AlarmType.FIRE_BUTTON)
    mirrored = _alarm("m1", "xingfu", "gas-kitchen", AlarmType.GAS_LEAK)
    book.hold(own)
    book.hold(mirrored)
    return book, own, mirrored


@pytest.mark.parametrize(
    ("target", "site", "device", "type_"),
    [
        ("own1", "xingfu", "btn-lobby", AlarmType.FIRE_BUTTON),  # another site's alarm
        ("m1", "xingfu", "co-kitchen", AlarmType.GAS_LEAK),  # same site, another device
        ("m1", "xingfu", "gas-kitchen", AlarmType.DEVICE_OFFLINE),  # same device, other type
    ],
)
def test_an_id_of_another_key_is_refused_and_nothing_changes(
    target: str, site: str, device: str, type_: AlarmType
) -> None:
    book, own, mirrored = _book()
    before = copy.deepcopy((own, mirrored))
    forged = _alarm(target, site, device, type_)
    forged.state, forged.closed_by = AlarmState.CLOSED, "attacker"
    snap = _parse(_wire(forged, "closed")).event(T0)
    with pytest.raises(ForeignAlarm):
        mirror(book, snap, T0 + 5)
    assert (own, mirrored) == before
    assert book.get("own1") is own and book.get("m1") is mirrored and len(book) == 2


def test_the_edge_closes_its_own_alarm() -> None:
    book, own, mirrored = _book()
    closed = copy.deepcopy(mirrored)
    closed.state, closed.closed_by, closed.closed_at = AlarmState.CLOSED, "王值班", T0 + 9
    writes = mirror(book, _parse(_wire(closed, "closed")).event(T0), T0 + 10)
    assert [w.action for w in writes] == [Action.CLOSED]
    assert mirrored.state is AlarmState.CLOSED and mirrored.closed_by == "王值班"
    assert book.get("m1") is None and book.get("own1") is own


def test_a_new_edge_alarm_supersedes_the_one_of_its_key() -> None:
    book, _, mirrored = _book()
    newer = _alarm("m2", "xingfu", "gas-kitchen", AlarmType.GAS_LEAK)
    writes = mirror(book, _parse(_wire(newer)).event(T0), T0 + 10)
    assert [(w.alarm.id, w.action) for w in writes] == [
        ("m1", Action.CLOSED),
        ("m2", Action.RAISED),
    ]
    assert mirrored.state is AlarmState.CLOSED and book.get("m2") is not None


def test_the_edge_s_plain_repeats_are_bounded_in_the_mirror_too() -> None:
    book = AlarmBook(repeats_kept=2)
    button = _alarm("b1", "xingfu", "btn-lobby", AlarmType.FIRE_BUTTON, latched=True)
    mirror(book, _parse(_wire(button, "raised")).event(T0), T0)
    for n in range(2, 12):
        button.count, button.updated_at = n, T0 + n
        writes = mirror(book, _parse(_wire(button, "repeated")).event(T0 + n), T0 + n)
    held = book.get("b1")
    assert held is not None and held.count == 11
    assert [e.action for e in held.timeline].count(Action.REPEATED) == 4
    assert held.repeats.elided == 6
    assert writes[-1].elided == (8,)  # the oldest of the last two, as the edge's own book does
