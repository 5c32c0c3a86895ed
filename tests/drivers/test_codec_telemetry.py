"""The native JSON codec: telemetry judged per quantity."""

from __future__ import annotations

from typing import Any

import pytest

from drivers import codec
from drivers.codec import (
    QuantityRejected,
    RejectReason,
)
from rules.model import PHYSICAL_RANGE
from tests.support.codec import (
    NOW,
    REF,
    TS_MS,
    payload_bytes,
    rejected,
    telemetry,
    telemetry_rejected,
)


# --------------------------------------------------------------- telemetry
def test_valid_telemetry() -> None:
    decoded = telemetry({"ts": TS_MS, "values": {"lel": 12, "temp_c_1": 23.5}})
    assert decoded.rejected == ()
    reading = decoded.reading
    assert reading.ref == REF
    assert dict(reading.values) == {"lel": 12.0, "temp_c_1": 23.5}
    assert all(type(v) is float for v in reading.values.values())
    assert reading.ts == pytest.approx(TS_MS / 1000.0)


def test_telemetry_ts_as_float_milliseconds() -> None:
    decoded = telemetry({"ts": float(TS_MS), "values": {"lel": 1}})
    assert decoded.reading.ts == pytest.approx(TS_MS / 1000.0)


def test_missing_ts_uses_received_time() -> None:
    assert telemetry({"values": {"lel": 0}}).reading.ts == NOW


def test_null_ts_uses_received_time() -> None:
    assert telemetry({"ts": None, "values": {"lel": 0}}).reading.ts == NOW


@pytest.mark.parametrize(
    "ts",
    [
        1000,  # a clock that starts at 1970
        0,
        -5,
        1_400_000_000_000,  # 2014: before any of our devices
        int(NOW * 1000) + 2 * 24 * 3600 * 1000,  # two days in the future
        int(NOW),  # epoch seconds sent instead of milliseconds
        1e300,
    ],
)
def test_implausible_ts_uses_received_time(ts: float) -> None:
    assert telemetry({"ts": ts, "values": {"lel": 3}}).reading.ts == NOW


def test_ts_slightly_in_the_future_is_believed() -> None:
    ts = int(NOW * 1000) + 3600 * 1000
    assert telemetry({"ts": ts, "values": {"lel": 3}}).reading.ts == pytest.approx(ts / 1000)


@pytest.mark.parametrize("ts", ['"1732480000123"', "true", "[1]", "{}"])
def test_ts_of_the_wrong_type(ts: str) -> None:
    payload = '{"ts": ' + ts + ', "values": {"lel": 1}}'
    assert telemetry_rejected(payload) is RejectReason.WRONG_TYPE


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b'{"values": {"lel": 1}',
        b'{"values": {"lel": 1}}}',
        b"lel=12",
        b"{'values': {'lel': 1}}",
        b'{"values": {"lel": 01}}',
        b'{"values": {"lel": 1,}}',
        b"\x00",
        b" ",
    ],
)
def test_malformed_json(payload: bytes) -> None:
    assert telemetry_rejected(payload) is RejectReason.MALFORMED_JSON


@pytest.mark.parametrize(
    "payload",
    [
        b'{"values": {"lel": 1}, "note": "\xff\xfe"}',
        b'{"values": {"lel\xc3": 1}}',
        b"\xff\xfe",
        b"\xed\xa0\x80",  # an encoded surrogate
        # UTF-16 (with a BOM) is not UTF-8 either, even when what it spells is NaN:
        '{"values": {"lel": NaN}}'.encode("utf-16"),
        '{"values": {"lel": 1e999}}'.encode("utf-16"),
        '{"values": {"lel": 5}}'.encode("utf-16"),
    ],
)
def test_invalid_utf8_is_malformed(payload: bytes) -> None:
    assert telemetry_rejected(payload) is RejectReason.MALFORMED_JSON


@pytest.mark.parametrize("payload", [b"[]", b'[{"values": {"lel": 1}}]', b"12", b'"lel"', b"null"])
def test_json_that_is_not_an_object(payload: bytes) -> None:
    assert telemetry_rejected(payload) is RejectReason.WRONG_TYPE


@pytest.mark.parametrize(
    "payload",
    [{}, {"ts": TS_MS}, {"values": [12]}, {"values": 12}, {"values": "lel=12"}, {"values": None}],
)
def test_values_not_an_object(payload: dict[str, Any]) -> None:
    assert telemetry_rejected(payload) is RejectReason.WRONG_TYPE


@pytest.mark.parametrize("value", ["12", True, False, None, [12], {"v": 12}])
def test_value_of_the_wrong_type(value: object) -> None:
    assert telemetry_rejected({"values": {"lel": value}}) is RejectReason.WRONG_TYPE


@pytest.mark.parametrize(
    "payload",
    [
        b'{"values": {"lel": NaN}}',
        b'{"values": {"lel": Infinity}}',
        b'{"values": {"lel": -Infinity}}',
        b'{"values": {"lel": 1e999}}',
        b'{"values": {"lel": -1e999}}',
        b'{"values": {"lel": ' + b"9" * 400 + b"}}",  # an integer no double can hold
        b'{"values": {"lel": -' + b"9" * 5000 + b"}}",
        b'{"ts": NaN, "values": {"lel": 5}}',
    ],
)
def test_non_finite_literals(payload: bytes) -> None:
    assert telemetry_rejected(payload) is RejectReason.NOT_FINITE


def test_non_finite_rejects_the_whole_message_even_beside_good_values() -> None:
    # NaN is not JSON: the payload cannot be parsed, so no quantity survives.
    assert telemetry_rejected(b'{"values": {"lel": 5, "temp_c": NaN}}') is RejectReason.NOT_FINITE


@pytest.mark.parametrize(
    "values",
    [
        {"residual_ma": -1},
        {"residual_ma": -0.001},
        {"lel": 5000},
        {"lel": -6},
        {"temp_c": -61},
        {"temp_c_2": 1000.5},
        {"current_a": -3},
        {"voltage_v": 100_001},
        {"co_ppm": 2_000_000},
        {"open": 0.5},
        {"open": 2},
        {"open": -1},
        {"lel": 1e300},
    ],
)
def test_out_of_range(values: dict[str, float]) -> None:
    assert telemetry_rejected({"values": values}) is RejectReason.OUT_OF_RANGE


@pytest.mark.parametrize(
    "values",
    [
        {"lel": -5},
        {"lel": 2000},
        {"lel": 150},  # above 100 %LEL is a real, very dangerous concentration
        {"residual_ma": 0},
        {"temp_c": -60},
        {"temp_c": 1000},
        {"open": 0},
        {"open": 1},
        {"open": 1.0},
        {"co_ppm": 0},
        {"voltage_v": 230.1},
        {"current_a": 63},
    ],
)
def test_edges_of_the_physical_range_accepted(values: dict[str, float]) -> None:
    decoded = telemetry({"values": values})
    assert dict(decoded.reading.values) == {k: float(v) for k, v in values.items()}
    assert decoded.rejected == ()


def test_every_canonical_quantity_accepted() -> None:
    values = {
        name: (lo + hi) / 2 if name != "open" else 1 for name, (lo, hi) in PHYSICAL_RANGE.items()
    }
    decoded = telemetry({"values": values})
    assert set(decoded.reading.values) == set(PHYSICAL_RANGE)


def test_unknown_quantity_beside_a_good_one() -> None:
    decoded = telemetry({"ts": TS_MS, "values": {"residual_ma": 120, "humidity": 40}})
    assert dict(decoded.reading.values) == {"residual_ma": 120.0}
    assert decoded.reading.ts == pytest.approx(TS_MS / 1000)
    assert len(decoded.rejected) == 1
    bad = decoded.rejected[0]
    assert isinstance(bad, QuantityRejected)
    assert bad.quantity == "humidity"
    assert bad.reason is RejectReason.UNKNOWN_QUANTITY


def test_each_bad_quantity_reported_with_its_own_reason() -> None:
    decoded = telemetry(
        {
            "values": {
                "temp_c_1": 41.5,
                "temp_c_2": "hot",
                "residual_ma": -4,
                "open": 0.5,
                "speed": 3,
                "lel": True,
            }
        }
    )
    assert dict(decoded.reading.values) == {"temp_c_1": 41.5}
    assert {(q.quantity, q.reason) for q in decoded.rejected} == {
        ("temp_c_2", RejectReason.WRONG_TYPE),
        ("residual_ma", RejectReason.OUT_OF_RANGE),
        ("open", RejectReason.OUT_OF_RANGE),
        ("speed", RejectReason.UNKNOWN_QUANTITY),
        ("lel", RejectReason.WRONG_TYPE),
    }


def test_all_quantities_bad_rejects_the_message_with_the_first_reason() -> None:
    err = rejected(
        codec.decode_telemetry, REF, payload_bytes({"values": {"humidity": 40, "lel": 9000}}), NOW
    )
    assert err.reason is RejectReason.UNKNOWN_QUANTITY
    assert "humidity" in err.detail
    err = rejected(
        codec.decode_telemetry, REF, payload_bytes({"values": {"lel": 9000, "x": 1}}), NOW
    )
    assert err.reason is RejectReason.OUT_OF_RANGE
    assert "lel" in err.detail


def test_empty_payload() -> None:
    assert telemetry_rejected(b"") is RejectReason.EMPTY


def test_empty_values() -> None:
    assert telemetry_rejected({"values": {}}) is RejectReason.EMPTY


@pytest.mark.parametrize("channel", range(1, 17))
def test_temperature_channels_1_to_16_accepted(channel: int) -> None:
    name = f"temp_c_{channel}"
    decoded = telemetry({"values": {name: 30}})
    assert dict(decoded.reading.values) == {name: 30.0}
    assert decoded.rejected == ()


@pytest.mark.parametrize(
    "name",
    ["temp_c_17", "temp_c_0", "temp_c_x", "temp_c_", "temp_c_-1", "temp_c_1.5", "temp_c_100"],
)
def test_other_temperature_channels_rejected(name: str) -> None:
    decoded = telemetry({"values": {"lel": 1, name: 30}})
    assert dict(decoded.reading.values) == {"lel": 1.0}
    assert [(q.quantity, q.reason) for q in decoded.rejected] == [
        (name, RejectReason.UNKNOWN_QUANTITY)
    ]
    assert telemetry_rejected({"values": {name: 30}}) is RejectReason.UNKNOWN_QUANTITY


@pytest.mark.parametrize(
    "name",
    [
        "temp_c_\u00b2",  # superscript two: str.isdigit() but not int()
        "temp_c_\u0661",  # Arabic-Indic one: int() reads it as 1
        "temp_c_\uff11",  # fullwidth one
        "lel\u200b",  # zero-width space
    ],
)
def test_non_ascii_quantity_names_are_unknown_not_a_crash(name: str) -> None:
    decoded = telemetry({"values": {"lel": 7, name: 30}})
    assert dict(decoded.reading.values) == {"lel": 7.0}
    assert [(q.quantity, q.reason) for q in decoded.rejected] == [
        (name, RejectReason.UNKNOWN_QUANTITY)
    ]


@pytest.mark.parametrize(
    ("payload", "ignored"),
    [
        ({"values": {"lel": 30}}, 0),
        ({"values": {"lel": 30}, "ts": TS_MS}, 0),
        ({"values": {"lel": 30}, "seq": 1}, 1),  # issue 13: a 30 %LEL reading with a `seq`
        ({"values": {"lel": 30}, "ts": TS_MS, "rssi": -71, "battery": 96}, 2),
        ({"values": {"lel": 30}, "device": "gas-kitchen", "unit": "%LEL", "Values": {}}, 3),
        ({"values": {"lel": 30}, "ts": TS_MS, "seq": {"nested": [1, 2]}}, 1),
    ],
)
def test_extra_top_level_fields_are_ignored_and_counted(
    payload: dict[str, Any], ignored: int
) -> None:
    """Liberal envelope (issue 13): a vendor's extra fields never drop the reading."""
    decoded = telemetry(payload)
    assert dict(decoded.reading.values) == {"lel": 30.0}
    assert decoded.ignored == ignored
    assert decoded.device_time is ("ts" in payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"values": {"lel": float("nan")}, "seq": 1},
        {"values": {"lel": 2001}, "seq": 1},
        {"values": {"lel": "30"}, "rssi": -71},
        {"values": 30, "seq": 1},
        {"seq": 1, "lel": 30},  # the values must still be where the contract says
    ],
)
def test_values_stay_strict_beside_extra_fields(payload: dict[str, Any]) -> None:
    assert telemetry_rejected(payload) in (
        RejectReason.NOT_FINITE,
        RejectReason.OUT_OF_RANGE,
        RejectReason.WRONG_TYPE,
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b"[" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"values": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"values": {"lel": ' + b"[" * 10_000 + b"NaN" + b"]" * 10_000 + b"}}",
        b"[" * 900 + b"NaN" + b"]" * 900,
        b"[" * 1000 + b"1e999" + b"]" * 1000,
    ],
)
def test_deeply_nested_json_is_rejected_without_crashing(payload: bytes) -> None:
    err = rejected(codec.decode_telemetry, REF, payload, NOW)
    assert isinstance(err.reason, RejectReason)
    err = rejected(codec.decode_event, REF, payload, NOW)
    assert isinstance(err.reason, RejectReason)
    err = rejected(codec.decode_ack, payload)
    assert isinstance(err.reason, RejectReason)


def test_rejected_carries_reason_and_detail() -> None:
    err = rejected(codec.decode_telemetry, REF, b'{"values": {"lel": 9000}}', NOW)
    assert err.reason is RejectReason.OUT_OF_RANGE
    assert "9000" in err.detail
    assert str(err).startswith("out_of_range: ")
