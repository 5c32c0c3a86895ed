"""Payload mappings (drivers/mapping.py): vendor JSON onto the contract, with its value checks."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from drivers.codec import Rejected, RejectReason
from drivers.mapping import (
    DecodedMessage,
    MappingError,
    PayloadMapping,
    all_mappings,
    builtin_mappings,
    load_mapping,
    parse_path,
)
from rules.model import DeviceRef, EventKind

REF = DeviceRef("xingfu", "gas-4g")
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, 30, tzinfo=SHANGHAI).timestamp()


def decode(mapping: str | PayloadMapping, payload: Any, now: float = NOW) -> DecodedMessage:
    m = builtin_mappings()[mapping] if isinstance(mapping, str) else mapping
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return m.decode(REF, raw, now, SHANGHAI)


def reject(mapping: str | PayloadMapping, payload: Any) -> Rejected:
    with pytest.raises(Rejected) as info:
        decode(mapping, payload)
    return info.value


def mapping(**fields: Any) -> PayloadMapping:
    base: dict[str, Any] = {
        "name": "t",
        "vendor": "v",
        "model": "m",
        "source": "a test of the mapping",
        "device_type": "gas_detector",
    }
    return PayloadMapping.model_validate(base | fields)


# ------------------------------------------------------- the shipped examples
def test_lian_nb_gas_reads_the_platform_sample() -> None:
    # The sample of the cited source, with a concentration and a fault code added.
    sample = {
        "deviceCode": "869162052818257",
        "productId": "15017088",
        "IMEI": "869162052818257",
        "protocol": "LWM2M",
        "payload": {
            "valve_state": 2,
            "temperature": 0,
            "medium": 0,
            "gas_value": 30,
            "gas_sensor_state": 1,
            "fan_state": 2,
            "battery_voltage": 1.1,
            "battery_value": 100,
            "error_code": 0,
        },
    }
    d = decode("lian_nb_gas", sample)
    assert d.reading is not None and dict(d.reading.values) == {"lel": 30.0}
    assert d.reading.ts == NOW and not d.device_time  # the platform's payload has no time
    assert [e.event for e in d.events] == [EventKind.FAULT_CLEARED]
    assert d.ignored == 4  # deviceCode, productId, IMEI, protocol
    faulty = decode("lian_nb_gas", {"payload": {"gas_value": 0, "error_code": 5}})
    assert [e.event for e in faulty.events] == [EventKind.FAULT]


def test_generic_4g_gas_time_is_the_sites_wall_clock() -> None:
    payload = {
        "imei": "866123045678901",
        "seq": 17,
        "rssi": -71,
        "time": "2026-12-01 08:00:00",
        "status": "online",
        "data": {"gas": "23", "fault": 0, "battery": 96},
    }
    d = decode("generic_4g_gas", payload)
    assert d.reading is not None and dict(d.reading.values) == {"lel": 23.0}
    # 08:00 in Shanghai is 00:00 UTC.
    assert d.reading.ts == datetime(2026, 12, 1, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert d.device_time
    assert d.availability is not None and d.availability.online
    assert [(e.event, e.ts) for e in d.events] == [(EventKind.FAULT_CLEARED, d.reading.ts)]
    assert d.ignored == 3  # imei, seq, rssi
    # The same wall clock read in another site zone is another instant.
    utc = builtin_mappings()["generic_4g_gas"].decode(
        REF, json.dumps(payload).encode(), NOW + 8 * 3600, ZoneInfo("UTC")
    )
    assert utc.reading is not None and utc.reading.ts == d.reading.ts + 8 * 3600


def test_dtu_variant_gas_reads_the_protocols_shape() -> None:
    ms = int(NOW * 1000) - 30_000
    payload = {"type": "variant_data", "version": "1.0", "time": ms,
               "params": {"燃气浓度": 23, "故障": 1}}  # fmt: skip
    d = decode("dtu_variant_gas", payload)
    assert d.reading is not None and dict(d.reading.values) == {"lel": 23.0}
    assert d.reading.ts == ms / 1000 and d.device_time
    assert [e.event for e in d.events] == [EventKind.FAULT]
    r = reject("dtu_variant_gas", {"type": "variant_data", "params": {"故障": 0}})
    assert r.reason is RejectReason.MISSING_FIELD and "params.燃气浓度" in r.detail


def test_generic_4g_gas_missing_concentration_is_rejected_with_its_path() -> None:
    r = reject("generic_4g_gas", {"time": "2026-12-01 08:00:00", "data": {"fault": 0}})
    assert r.reason is RejectReason.MISSING_FIELD and "data.gas" in r.detail


@pytest.mark.parametrize(
    ("gas", "reason"),
    [
        (2001, RejectReason.OUT_OF_RANGE),  # never clamped to the range
        ("lots", RejectReason.WRONG_TYPE),
        (True, RejectReason.WRONG_TYPE),
        ("NaN", RejectReason.NOT_FINITE),
    ],
)
def test_values_are_checked_as_the_native_codecs(gas: Any, reason: RejectReason) -> None:
    r = reject("generic_4g_gas", {"data": {"gas": gas}})
    assert r.reason is reason


def test_a_bad_value_beside_a_good_event_is_reported_not_hiding_the_event() -> None:
    d = decode("generic_4g_gas", {"data": {"gas": 5000, "fault": 1}})
    assert d.reading is None
    assert [e.event for e in d.events] == [EventKind.FAULT]
    assert [(q.quantity, q.reason) for q in d.rejected] == [("lel", RejectReason.OUT_OF_RANGE)]


# ----------------------------------------------------------- the mechanics
def test_scale_offset_and_list_paths() -> None:
    m = mapping(
        quantities=[
            {"path": "d.ch[1].v", "quantity": "lel", "scale": 0.1, "offset": -10},
            {"path": "d.t", "quantity": "temp_c_2"},
        ],
    )
    d = decode(m, {"d": {"ch": [{"v": 1}, {"v": 350}], "t": 21}})
    assert d.reading is not None
    assert dict(d.reading.values) == {"lel": pytest.approx(25.0), "temp_c_2": 21.0}
    assert decode(m, {"d": {"t": 21}}).reading is not None  # an optional path may be absent
    assert reject(m, {"x": 1}).reason is RejectReason.EMPTY


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("epoch_s", 1_796_083_200, 1_796_083_200.0),
        ("epoch_ms", 1_796_083_200_500, 1_796_083_200.5),
        ("epoch_s", "1796083200", 1_796_083_200.0),
        ("iso8601", "2026-12-01T08:00:00", 1_796_083_200.0),  # no zone: the site's
        ("iso8601", "2026-12-01T00:00:00+00:00", 1_796_083_200.0),
        ("epoch_s", 1_000_000_000, NOW),  # 2001: the device's clock is not believed
        ("YYYY-MM-DD HH:MM:SS", "2027-12-01 08:00:00", NOW),  # a year ahead: nor this
    ],
)
def test_time_formats(fmt: str, value: Any, expected: float) -> None:
    m = mapping(time={"path": "t", "format": fmt}, quantities=[{"path": "g", "quantity": "lel"}])
    d = decode(m, {"t": value, "g": 1})
    assert d.reading is not None and d.reading.ts == pytest.approx(expected)


@pytest.mark.parametrize("value", ["2026/12/01 08:00", "yesterday", 12])
def test_a_time_that_is_not_its_format_is_rejected(value: Any) -> None:
    r = reject("generic_4g_gas", {"time": value, "data": {"gas": 1}})
    assert r.reason is RejectReason.WRONG_TYPE and "time" in r.detail


def test_event_values_must_all_be_listed() -> None:
    m = mapping(events=[{"path": "ev", "values": {"0003": "fault"}, "ignore": ["0009"]}])
    assert [e.event for e in decode(m, {"ev": "0003"}).events] == [EventKind.FAULT]
    assert reject(m, {"ev": "0009"}).reason is RejectReason.EMPTY  # a heartbeat, said plainly
    assert reject(m, {"ev": "0042"}).reason is RejectReason.UNKNOWN_EVENT


def test_status_values() -> None:
    m = mapping(status={"path": "s", "online": ["1", "true"], "offline": ["0"]})
    online = decode(m, {"s": True}).availability
    offline = decode(m, {"s": 0}).availability
    assert online is not None and online.online and offline is not None and not offline.online
    assert reject(m, {"s": "maybe"}).reason is RejectReason.WRONG_TYPE


def test_non_object_payloads_are_rejected_as_natively() -> None:
    assert reject("lian_nb_gas", b"").reason is RejectReason.EMPTY
    assert reject("lian_nb_gas", b"[1]").reason is RejectReason.WRONG_TYPE
    assert reject("lian_nb_gas", b"{").reason is RejectReason.MALFORMED_JSON


# -------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantities": [{"path": "a", "quantity": "gas"}]}, "unknown quantity 'gas'"),
        ({"quantities": [{"path": "a..b", "quantity": "lel"}]}, "bad path"),
        ({"quantities": [{"path": "a", "quantity": "lel", "scale": 0}]}, "scale 0"),
        (
            {"quantities": [{"path": "a", "quantity": "lel"}, {"path": "b", "quantity": "lel"}]},
            "mapped twice",
        ),
        ({"events": [{"path": "e", "values": {"1": "explosion"}}]}, "values.1"),
        ({"time": {"path": "t", "format": "DD/MM/YYYY"}}, "time.format"),
        ({}, "needs quantities, events or a status"),
    ],
)
def test_invalid_mappings_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        mapping(**fields)
    assert message in str(info.value)


def test_a_bad_file_is_reported_with_its_paths(tmp_path: Path) -> None:
    bad = {
        "name": "bad_one",
        "vendor": "v",
        "model": "m",
        "source": "unverified test file",
        "device_type": "gas_detector",
        "quantities": [{"path": "data.gas", "quantity": "lel", "scale": "x"}],
        "events": [{"path": "e", "values": {"1": "boom"}}],
    }
    path = tmp_path / "bad_one.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    text = str(info.value)
    assert str(path) in text
    assert "quantities.0.scale:" in text and "events.0.values.1:" in text
    # A directory of them: every bad file named, and a name that is not its file's refused.
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(bad | {"name": "x"}), encoding="utf-8")
    with pytest.raises(MappingError, match=r"bad_one\.yaml") as info2:
        all_mappings((tmp_path,))
    assert "other.yaml" in str(info2.value)


def test_shipped_mappings_cite_a_source() -> None:
    shipped = builtin_mappings()
    assert set(shipped) >= {"lian_nb_gas", "generic_4g_gas"}
    assert "wanghanhong/springcloud_alibaba" in shipped["lian_nb_gas"].source
    assert "unverified" in shipped["generic_4g_gas"].source


def test_paths_parse() -> None:
    assert parse_path("a.b[2].c") == ("a", "b", 2, "c")
    for bad in ("", ".a", "a.", "a[x]", "a b"):
        with pytest.raises(ValueError):
            parse_path(bad)
