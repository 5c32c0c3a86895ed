"""The configuration's shape: types, ids, units, ranges and unknown settings, each problem with
its path."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.loading import parse_config
from tests.support.config import (
    base,
    device,
    problems_of,
)


# -------------------------------------------------------------------- devices
def test_unknown_device_type() -> None:
    data = base()
    device(data, 1)["type"] = "teapot"
    found = problems_of(data)
    assert len(found) == 2, found
    assert found[0].startswith("sites[0].devices[1].type: ")
    assert "gas_valve" in found[0]  # the message lists the accepted types
    # the valve reference is still checked on the raw data
    assert found[1] == (
        "sites[0].devices[0].shutoff_valve: device 'valve-1' is of type teapot, not gas_valve"
    )


def test_device_type_of_the_wrong_shape_is_reported_not_crashed() -> None:
    data = base()
    device(data, 0)["type"] = ["gas_detector"]
    found = problems_of(data)
    assert any(p.startswith("sites[0].devices[0].type: ") for p in found), found


def test_device_id_must_be_usable_in_a_topic() -> None:
    data = base()
    device(data, 2)["id"] = "efm/1"
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith("sites[0].devices[2].id: ")


# ----------------------------------------------------------- unknown settings
@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda d: d, "colour"),
        (lambda d: d["gateway"], "gateway.colour"),
        (lambda d: d["sites"][0], "sites[0].colour"),
        (lambda d: d["sites"][0]["devices"][1], "sites[0].devices[1].colour"),
        (
            lambda d: (
                d["sites"][0]["devices"][0].setdefault("thresholds", {}).setdefault("gas_leak", {})
            ),
            "sites[0].devices[0].thresholds.gas_leak.colour",
        ),
        (lambda d: d.setdefault("rules", {}), "rules.colour"),
        (lambda d: d.setdefault("http", {}), "http.colour"),
        (lambda d: d.setdefault("mqtt", {}), "mqtt.colour"),
    ],
)
def test_unknown_setting_anywhere(where: Any, path: str) -> None:
    data = base()
    where(data)["colour"] = "red"
    assert problems_of(data) == [f"{path}: unknown setting"]


def test_unknown_setting_in_a_token_and_a_contact() -> None:
    data = base()
    data["http"] = {
        "tokens": [{"name": "a", "token_env": "TOK_A", "role": "admin", "scope": "all"}]
    }
    data["sites"][0]["contacts"] = [{"name": "Zhang", "role": "safety_manager", "fax": "1"}]
    assert sorted(problems_of(data)) == [
        "http.tokens[0].scope: unknown setting",
        "sites[0].contacts[0].fax: unknown setting",
    ]


def test_unknown_threshold_rule_name() -> None:
    data = base()
    device(data, 2)["thresholds"] = {"earthquake": {"alarm": 5}}
    assert problems_of(data) == ["sites[0].devices[2].thresholds.earthquake: unknown setting"]


def test_unknown_type_in_rules_defaults() -> None:
    data = base()
    data["rules"] = {"defaults": {"teapot": {}}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("rules.defaults.teapot")


# ---------------------------------------------------------------------- units
def test_bad_unit_for_residual_current() -> None:
    data = base()
    device(data, 2)["thresholds"] = {"residual_current": {"alarm": "300 kg"}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("sites[0].devices[2].thresholds.residual_current.alarm: ")
    assert "'kg'" in found[0]
    assert "mA" in found[0]


def test_bad_unit_for_gas() -> None:
    data = base()
    device(data, 0)["thresholds"] = {"gas_leak": {"levels": {"level_1": "20 ppm"}}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("sites[0].devices[0].thresholds.gas_leak.levels.level_1: ")
    assert "'ppm'" in found[0]
    assert "%LEL" in found[0]


def test_bad_unit_for_a_duration() -> None:
    data = base()
    device(data, 0)["report_interval"] = "5 furlongs"
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith("sites[0].devices[0].report_interval: ")


def test_unknown_gas_level_name() -> None:
    data = base()
    device(data, 0)["thresholds"] = {"gas_leak": {"levels": {"level_3": 80}}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("sites[0].devices[0].thresholds.gas_leak.levels.level_3")


def test_huge_integer_in_the_file_is_a_problem_not_a_crash() -> None:
    data = base()
    device(data, 0)["report_interval"] = 10**400
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("sites[0].devices[0].report_interval: ")


def test_zero_report_interval_refused() -> None:
    data = base()
    device(data, 1)["report_interval"] = "0 s"
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith("sites[0].devices[1].report_interval: ")


def test_negative_delay_refused() -> None:
    data = base()
    device(data, 0)["thresholds"] = {"gas_leak": {"off_delay": "-5 s"}}
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith("sites[0].devices[0].thresholds.gas_leak.off_delay: ")


# -------------------------------------------------------- gateway, http, mqtt
def test_unknown_timezone() -> None:
    data = base()
    data["gateway"]["timezone"] = "Mars/Olympus_Mons"
    assert problems_of(data) == ["gateway.timezone: unknown time zone 'Mars/Olympus_Mons'"]


def test_known_timezone_accepted() -> None:
    data = base()
    data["gateway"]["timezone"] = "Europe/Berlin"
    assert parse_config(data).gateway.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:1883", "expected mqtt://host[:port] or mqtts://host[:port]"),
        ("127.0.0.1:1883", "expected mqtt://host[:port] or mqtts://host[:port]"),
        ("mqtt://", "expected mqtt://host[:port] or mqtts://host[:port]"),
        ("mqtt://broker:99999", "bad port in 'mqtt://broker:99999'"),
        ("mqtt://broker:port", "bad port in 'mqtt://broker:port'"),
    ],
)
def test_bad_mqtt_url(url: str, message: str) -> None:
    data = base()
    data["mqtt"] = {"url": url}
    assert problems_of(data) == [f"mqtt.url: {message}"]


def test_good_mqtt_url() -> None:
    data = base()
    data["mqtt"] = {"url": "mqtt://broker.local:1884", "topic_prefix": "zy/safety"}
    config = parse_config(data)
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.port) == ("broker.local", 1884)
    assert config.topic_prefix == "zy/safety"


def test_bad_topic_prefix() -> None:
    data = base()
    data["mqtt"] = {"topic_prefix": "safety/#"}
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith("mqtt.topic_prefix: ")


def test_token_env_must_look_like_a_variable_name() -> None:
    data = base()
    data["http"] = {"tokens": [{"name": "a", "token_env": "not a var", "role": "admin"}]}
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith("http.tokens[0].token_env: ")


# ------------------------------------------------------------- missing fields
def test_missing_required_fields() -> None:
    data = base()
    del data["gateway"]
    del device(data, 1)["location"]
    del data["sites"][0]["kind"]
    assert sorted(problems_of(data)) == [
        "gateway: required setting is missing",
        "sites[0].devices[1].location: required setting is missing",
        "sites[0].kind: required setting is missing",
    ]


def test_missing_sites() -> None:
    data = base()
    del data["sites"]
    assert problems_of(data) == ["sites: required setting is missing"]


def test_empty_sites_refused() -> None:
    data = base()
    data["sites"] = []
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith("sites: ")


# -------------------------------------------------------------------- storage
def test_storage_defaults_and_problems() -> None:
    config = parse_config(base())
    assert config.storage.backup_at == "03:30"
    assert config.storage.backup_keep == 7
    assert config.storage.retention_days == 400
    data = base()
    data["storage"] = {
        "backup_at": "25:00",
        "backup_keep": 0,
        "retention_days": 7,
        "backup_every": "1 h",
    }
    found = problems_of(data)
    assert [p.split(":")[0] for p in found] == [
        "storage.backup_keep",
        "storage.backup_at",
        "storage.retention_days",
        "storage.backup_every",
    ], found


def test_backups_and_the_archive_need_directories_of_their_own() -> None:
    data = base()
    data["storage"] = {"backup_dir": "keep", "archive_dir": "./keep"}
    [found] = problems_of(data)
    assert found.startswith("storage: ")
    assert "backup_dir and archive_dir must be different directories" in found
    data["storage"] = {"archive_dir": "."}
    [found] = problems_of(data)
    assert "must not be the data directory itself" in found
