"""Configuration loading and validation: every problem reported with its exact path."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.checks import missing_secrets
from gateway.config.errors import ConfigError, ConfigProblem
from gateway.config.loading import load_config, parse_config
from gateway.config.ruleset import build_rules
from gateway.config.schema import GatewayConfig
from gateway.config.units import parse_measure
from rules.engine import DeviceRules
from rules.model import AlarmType, DeviceRef, DeviceType

DEMO_SITE = Path(__file__).resolve().parents[3] / "gateway" / "cli" / "demo_site.yaml"


def base() -> dict[str, Any]:
    """A small valid configuration; tests copy it and break one thing at a time."""
    return {
        "gateway": {"id": "gw-1"},
        "sites": [
            {
                "id": "site-a",
                "name": "Site A",
                "kind": "elderly_care",
                "devices": [
                    {
                        "id": "gas-1",
                        "type": "gas_detector",
                        "location": "kitchen",
                        "shutoff_valve": "valve-1",
                    },
                    {"id": "valve-1", "type": "gas_valve", "location": "kitchen"},
                    {"id": "efm-1", "type": "electrical_fire_monitor", "location": "switch room"},
                ],
            }
        ],
    }


def problems_of(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.problems, "ConfigError without problems"
    return [str(p) for p in info.value.problems]


def yaml_problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def rules_by_device(config: GatewayConfig) -> dict[str, DeviceRules]:
    return {r.ref.device: r for r in build_rules(config)}


def alarm_types(rules: DeviceRules) -> list[AlarmType]:
    return [t.alarm for t in rules.thresholds]


def rule_for(rules: DeviceRules, alarm: AlarmType):  # type: ignore[no-untyped-def]
    found = [t for t in rules.thresholds if t.alarm is alarm]
    assert len(found) == 1, f"expected exactly one {alarm} rule, got {alarm_types(rules)}"
    return found[0]


def device(data: dict[str, Any], index: int) -> dict[str, Any]:
    dev: dict[str, Any] = data["sites"][0]["devices"][index]
    return dev


# ---------------------------------------------------------------- valid files
def test_demo_site_is_valid() -> None:
    config = load_config(DEMO_SITE)
    assert [s.id for s in config.sites] == ["xingfu"]
    assert [d.id for _, d in config.devices()] == [
        "gas-kitchen",
        "valve-kitchen",
        "co-boiler",
        "efm-1",
        "btn-lobby",
    ]
    rules = rules_by_device(config)
    gas = rule_for(rules["gas-kitchen"], AlarmType.GAS_LEAK)
    assert gas.off_delay_s == 10.0  # rules.defaults.gas_detector in the demo file
    assert rules["gas-kitchen"].shutoff_valve == DeviceRef("xingfu", "valve-kitchen")
    assert rules["gas-kitchen"].report_interval_s == 2.0
    assert rules["btn-lobby"].report_interval_s == 60.0
    assert rules["co-boiler"].co is not None


def test_base_config_is_valid() -> None:
    config = parse_config(base())
    assert config.http.host == "127.0.0.1"
    assert config.mqtt is None
    assert config.topic_prefix == "safety"
    assert config.gateway.timezone == "Asia/Shanghai"
    assert len(list(config.devices())) == 3


def test_config_error_message_lists_every_problem() -> None:
    err = ConfigError([ConfigProblem("a.b", "first"), ConfigProblem("", "second")])
    assert str(err) == "a.b: first\nsecond"


# ------------------------------------------------------------ ids and valves
def test_site_id_gateways_is_reserved_for_presence_topics() -> None:
    data = base()
    data["sites"][0]["id"] = "gateways"
    assert problems_of(data) == ["sites[0].id: 'gateways' is reserved (gateway presence topics)"]


def test_duplicate_site_ids() -> None:
    data = base()
    data["sites"].append(copy.deepcopy(data["sites"][0]))
    data["sites"].append(copy.deepcopy(data["sites"][0]))
    data["sites"][1]["id"] = "site-b"
    assert problems_of(data) == ["sites[2].id: duplicate site id 'site-a' (first at sites[0])"]


def test_duplicate_device_ids_name_the_first_one() -> None:
    data = base()
    data["sites"][0]["devices"].append(
        {"id": "valve-1", "type": "alarm_button", "location": "hall"}
    )
    assert problems_of(data) == [
        "sites[0].devices[3].id: duplicate device id 'valve-1' in site 'site-a' "
        "(first at sites[0].devices[1])"
    ]


def test_same_device_id_in_two_sites_is_fine() -> None:
    data = base()
    other = copy.deepcopy(data["sites"][0])
    other["id"] = "site-b"
    data["sites"].append(other)
    config = parse_config(data)
    refs = {r.ref for r in build_rules(config)}
    assert DeviceRef("site-a", "gas-1") in refs
    assert DeviceRef("site-b", "gas-1") in refs


def test_shutoff_valve_naming_an_unknown_device() -> None:
    data = base()
    device(data, 0)["shutoff_valve"] = "valve-x"
    assert problems_of(data) == ["sites[0].devices[0].shutoff_valve: unknown device 'valve-x'"]


def test_shutoff_valve_in_another_site_is_unknown() -> None:
    data = base()
    other = {
        "id": "site-b",
        "name": "B",
        "kind": "other",
        "devices": [
            {"id": "gas-b", "type": "gas_detector", "location": "x", "shutoff_valve": "valve-1"}
        ],
    }
    data["sites"].append(other)
    assert problems_of(data) == ["sites[1].devices[0].shutoff_valve: unknown device 'valve-1'"]


def test_shutoff_valve_naming_a_device_that_is_not_a_valve() -> None:
    data = base()
    device(data, 0)["shutoff_valve"] = "efm-1"
    assert problems_of(data) == [
        "sites[0].devices[0].shutoff_valve: "
        "device 'efm-1' is of type electrical_fire_monitor, not gas_valve"
    ]


@pytest.mark.parametrize(
    "dtype", ["electrical_fire_monitor", "co_detector", "gas_valve", "alarm_button"]
)
def test_shutoff_valve_on_a_type_that_cannot_drive_one(dtype: str) -> None:
    data = base()
    data["sites"][0]["devices"].append(
        {"id": "other-1", "type": dtype, "location": "x", "shutoff_valve": "valve-1"}
    )
    assert problems_of(data) == [
        f"sites[0].devices[3].shutoff_valve: a device of type {dtype} cannot drive a shut-off valve"
    ]


def test_gas_alarm_controller_may_drive_a_valve() -> None:
    data = base()
    device(data, 0)["type"] = "gas_alarm_controller"
    rules = rules_by_device(parse_config(data))
    assert rules["gas-1"].shutoff_valve == DeviceRef("site-a", "valve-1")
    assert alarm_types(rules["gas-1"]) == [AlarmType.GAS_LEAK]


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


# ------------------------------------------------------------ unknown settings
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


# ------------------------------------------------------------------- units
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


def test_unit_conversions_reach_the_rules() -> None:
    data = base()
    device(data, 2)["thresholds"] = {
        "residual_current": {"alarm": "0.3 A", "on_delay": "2 min", "deadband": "25 mA"},
        "overtemperature": {"alarm": "80 °C", "off_delay": "1500 ms"},
    }
    device(data, 0)["thresholds"] = {"gas_leak": {"on_delay": "2 min", "off_delay": "0.5 h"}}
    config = parse_config(data)
    rc_cfg = config.sites[0].devices[2].thresholds.residual_current
    assert rc_cfg is not None
    assert rc_cfg.alarm == pytest.approx(300.0)
    assert rc_cfg.on_delay == pytest.approx(120.0)

    rules = rules_by_device(config)
    rc = rule_for(rules["efm-1"], AlarmType.RESIDUAL_CURRENT)
    assert rc.levels[0].at == pytest.approx(300.0)
    assert rc.on_delay_s == pytest.approx(120.0)
    assert rc.deadband == pytest.approx(25.0)
    temp = rule_for(rules["efm-1"], AlarmType.OVERTEMPERATURE)
    assert temp.levels[0].at == pytest.approx(80.0)
    assert temp.off_delay_s == pytest.approx(1.5)
    gas = rule_for(rules["gas-1"], AlarmType.GAS_LEAK)
    assert gas.on_delay_s == pytest.approx(120.0)
    assert gas.off_delay_s == pytest.approx(1800.0)


@pytest.mark.parametrize(
    ("quantity", "raw", "expected"),
    [
        ("residual_ma", "300 mA", 300.0),
        ("residual_ma", "0.3 A", 300.0),
        ("residual_ma", "0.3A", 300.0),
        ("residual_ma", 300, 300.0),
        ("residual_ma", "300", 300.0),
        ("current_a", "63 A", 63.0),
        ("current_a", "500 mA", 0.5),
        ("duration", "5 min", 300.0),
        ("duration", "2 min", 120.0),
        ("duration", "1500 ms", 1.5),
        ("duration", "1 h", 3600.0),
        ("duration", " 10 s ", 10.0),
        ("duration", "1e1 s", 10.0),
        ("duration", ".5 s", 0.5),
        ("lel", "10 %LEL", 10.0),
        ("lel", "10 %lel", 10.0),
        ("co_ppm", "50 ppm", 50.0),
        ("temp_c", "70 °C", 70.0),
        ("temp_c", "-10 C", -10.0),
        ("temp_c", "70 ℃", 70.0),
    ],
)
def test_parse_measure_good(quantity: str, raw: object, expected: float) -> None:
    assert parse_measure(quantity, raw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("quantity", "raw"),
    [
        ("residual_ma", "300 kg"),
        ("lel", "20 ppm"),
        ("co_ppm", "50 %LEL"),
        ("duration", "5 mA"),
        ("current_a", "10 s"),
        ("residual_ma", "lots"),
        ("residual_ma", "nan"),
        ("residual_ma", "inf mA"),
        ("residual_ma", "1e999 mA"),
        ("residual_ma", math.nan),
        ("residual_ma", math.inf),
        ("residual_ma", True),
        ("residual_ma", None),
        ("residual_ma", [300]),
        ("residual_ma", ""),
        pytest.param("residual_ma", 10**400, id="integer-too-large-for-a-float"),
    ],
)
def test_parse_measure_bad(quantity: str, raw: object) -> None:
    with pytest.raises(ValueError):
        parse_measure(quantity, raw)


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


# ------------------------------------------------------ gateway, http, mqtt
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
        ("http://127.0.0.1:1883", "expected mqtt://host[:port]"),
        ("127.0.0.1:1883", "expected mqtt://host[:port]"),
        ("mqtt://", "expected mqtt://host[:port]"),
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


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "gateway.local", "::"])
def test_non_loopback_http_without_tokens_refused(host: str) -> None:
    data = base()
    data["http"] = {"host": host}
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith(f"http.host: binding to {host} without http.tokens")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_http_without_tokens_accepted(host: str) -> None:
    data = base()
    data["http"] = {"host": host}
    assert parse_config(data).http.host == host


def test_non_loopback_http_with_tokens_accepted() -> None:
    data = base()
    data["http"] = {
        "host": "0.0.0.0",
        "tokens": [{"name": "admin", "token_env": "SG_ADMIN", "role": "admin"}],
    }
    assert parse_config(data).http.tokens[0].role == "admin"


def test_duty_token_without_sites() -> None:
    data = base()
    data["http"] = {"tokens": [{"name": "duty", "token_env": "SG_DUTY", "role": "duty"}]}
    assert problems_of(data) == ["http.tokens[0].sites: a duty token must name its sites"]


def test_token_naming_an_unknown_site() -> None:
    data = base()
    data["http"] = {
        "tokens": [
            {"name": "ok", "token_env": "SG_OK", "role": "duty", "sites": ["site-a"]},
            {"name": "d", "token_env": "SG_D", "role": "duty", "sites": ["site-a", "nowhere"]},
        ]
    }
    assert problems_of(data) == ["http.tokens[1].sites[1]: unknown site 'nowhere'"]


def test_token_env_must_look_like_a_variable_name() -> None:
    data = base()
    data["http"] = {"tokens": [{"name": "a", "token_env": "not a var", "role": "admin"}]}
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith("http.tokens[0].token_env: ")


def test_missing_secrets_named(monkeypatch: pytest.MonkeyPatch) -> None:
    data = base()
    data["http"] = {"tokens": [{"name": "a", "token_env": "SG_TEST_TOKEN_X", "role": "admin"}]}
    config = parse_config(data)
    monkeypatch.delenv("SG_TEST_TOKEN_X", raising=False)
    assert [str(p) for p in missing_secrets(config)] == [
        "http.tokens[0].token_env: environment variable SG_TEST_TOKEN_X is not set"
    ]
    monkeypatch.setenv("SG_TEST_TOKEN_X", "secret")
    assert missing_secrets(config) == []


# ------------------------------------------------------------------ modbus
def test_transport_modbus_without_modbus_section() -> None:
    data = base()
    device(data, 2)["transport"] = "modbus"
    assert problems_of(data) == [
        "sites[0].devices[2].modbus: transport modbus needs a modbus section"
    ]


def test_modbus_section_with_mqtt_transport() -> None:
    data = base()
    device(data, 2)["modbus"] = {"host": "10.0.0.5", "profile": "acrel_arcm300t_z"}
    assert problems_of(data) == [
        "sites[0].devices[2].modbus: modbus section given but transport is mqtt"
    ]


@pytest.mark.parametrize(
    "endpoint",
    [
        {"profile": "acrel_arcm300t_z"},
        {"host": "10.0.0.5", "serial": "/dev/ttyUSB0", "profile": "acrel_arcm300t_z"},
    ],
)
def test_modbus_needs_exactly_one_of_host_or_serial(endpoint: dict[str, Any]) -> None:
    data = base()
    device(data, 2).update(transport="modbus", modbus=endpoint)
    assert problems_of(data) == [
        "sites[0].devices[2].modbus: give exactly one of host (TCP) or serial (RTU)"
    ]


def test_modbus_profile_must_exist_and_fit_the_device() -> None:
    data = base()
    device(data, 2).update(transport="modbus", modbus={"host": "10.0.0.5", "profile": "nope"})
    found = problems_of(data)
    assert len(found) == 1
    assert found[0].startswith(
        "sites[0].devices[2].modbus.profile: unknown profile 'nope' (known: "
    )
    assert "acrel_arcm300t_z" in found[0]
    device(data, 2)["modbus"]["profile"] = "rotork_iq_pro"
    assert problems_of(data) == [
        "sites[0].devices[2].modbus.profile: profile 'rotork_iq_pro' describes a gas_valve, "
        "not a electrical_fire_monitor"
    ]


def test_controller_channels_must_name_channel_detectors() -> None:
    data = base()
    devices = data["sites"][0]["devices"]
    devices.append(
        {
            "id": "gac-1",
            "type": "gas_alarm_controller",
            "location": "gas room",
            "transport": "modbus",
            "modbus": {"host": "10.0.0.6", "profile": "igd_toc_635_plus"},
            "channels": {1: "gas-c1", 9: "gas-c2", 2: "ghost", 3: "gas-1"},
        }
    )
    devices.append(
        {"id": "gas-c1", "type": "gas_detector", "location": "k", "transport": "channel"}
    )
    devices.append(
        {"id": "gas-c2", "type": "gas_detector", "location": "k", "transport": "channel"}
    )
    devices.append(
        {"id": "gas-c3", "type": "gas_detector", "location": "k", "transport": "channel"}
    )
    assert sorted(problems_of(data)) == [
        "sites[0].devices[3].channels.2: unknown device 'ghost'",
        "sites[0].devices[3].channels.3: device 'gas-1' must have transport: channel",
        "sites[0].devices[3].channels.9: profile 'igd_toc_635_plus' has no channel 9",
        "sites[0].devices[6].transport: no gas_alarm_controller lists this device in its channels",
    ]


def test_modbus_device_valid() -> None:
    data = base()
    device(data, 2).update(
        transport="modbus",
        modbus={"host": "10.0.0.5", "port": 502, "unit": 1, "profile": "acrel_arcm300t_z"},
        poll_interval_s=2,
    )
    rules = rules_by_device(parse_config(data))
    # Silence is the backstop behind the poller's own offline rule: 3 failed polls of
    # (2 s interval + 1 s timeout x 2 attempts) take 12 s; x 1.5, over 3 intervals -> 6 s.
    assert rules["efm-1"].report_interval_s == 6.0


# -------------------------------------------------------------------- YAML
def test_duplicate_yaml_key_refused_with_line_number(tmp_path: Path) -> None:
    text = "gateway: {id: gw-1}\nsites: []\ngateway: {id: gw-2}\n"
    found = yaml_problems(tmp_path, text)
    assert len(found) == 1
    assert "not valid YAML" in found[0]
    assert "duplicate key 'gateway' (line 3)" in found[0]


def test_duplicate_yaml_key_in_a_nested_mapping(tmp_path: Path) -> None:
    text = yaml.safe_dump(base(), sort_keys=False)
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "location: kitchen")
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 1, f"{indent}location: attic")
    found = yaml_problems(tmp_path, "\n".join(lines) + "\n")
    assert len(found) == 1
    assert f"duplicate key 'location' (line {at + 2})" in found[0]


def test_yaml_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    text = """\
gateway: {id: gw-1}
sites:
  - id: site-a
    name: A
    kind: other
    devices:
      - &efm {id: efm-1, type: electrical_fire_monitor, location: switch room}
      - {<<: *efm, id: efm-2}
"""
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    devs = config.sites[0].devices
    assert [d.id for d in devs] == ["efm-1", "efm-2"]
    assert devs[1].location == "switch room"


def test_unhashable_yaml_key_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    found = yaml_problems(tmp_path, "gateway: {id: gw-1}\n? [a, b]\n: 1\n")
    assert len(found) == 1
    assert "not valid YAML" in found[0]


def test_invalid_yaml(tmp_path: Path) -> None:
    found = yaml_problems(tmp_path, "gateway: {id: gw-1\nsites: [\n")
    assert len(found) == 1
    assert "gateway.yaml: not valid YAML" in found[0]


def test_deeply_nested_yaml_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    found = yaml_problems(tmp_path, "sites: " + "[" * 5000 + "]" * 5000 + "\n")
    assert len(found) >= 1


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes("gateway: {id: gw-1}\n# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 1
    assert str(path) in str(info.value.problems[0])


def test_nonexistent_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(p) for p in info.value.problems] == [
        f"cannot read {path}: No such file or directory"
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "just a string\n", "- a\n- b\n"])
def test_file_without_a_mapping(tmp_path: Path, text: str) -> None:
    assert yaml_problems(tmp_path, text)


# --------------------------------------------------------- missing fields
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


# --------------------------------------------------- many problems at once
def test_type_error_and_dangling_valve_reported_together() -> None:
    data = base()
    device(data, 2)["location"] = 123  # a pydantic type error
    device(data, 0)["shutoff_valve"] = "valve-x"  # a cross-reference problem
    found = problems_of(data)
    assert "sites[0].devices[0].shutoff_valve: unknown device 'valve-x'" in found
    assert any(p.startswith("sites[0].devices[2].location: ") for p in found), found
    assert len(found) == 2


def test_many_problems_in_one_file_all_reported(tmp_path: Path) -> None:
    text = """\
gateway: {id: gw-1, timezone: Nowhere/Special}
mqtt: {url: "http://broker"}
sites:
  - id: site-a
    name: A
    kind: elderly_care
    devices:
      - {id: gas-1, type: gas_detector, location: kitchen, shutoff_valve: valve-x}
      - {id: gas-1, type: gas_valve, location: kitchen}
      - {id: efm-1, type: electrical_fire_monitor, location: room,
         thresholds: {residual_current: {alarm: 300 kg}}}
      - {id: btn-1, type: alarm_button, location: hall, colour: red}
  - id: site-a
    name: B
    kind: other
"""
    found = yaml_problems(tmp_path, text)
    expected_prefixes = [
        "gateway.timezone: unknown time zone 'Nowhere/Special'",
        "mqtt.url: expected mqtt://host[:port]",
        "sites[0].devices[2].thresholds.residual_current.alarm: ",
        "sites[0].devices[3].colour: unknown setting",
        "sites[1].id: duplicate site id 'site-a' (first at sites[0])",
        "sites[0].devices[1].id: duplicate device id 'gas-1' in site 'site-a' "
        "(first at sites[0].devices[0])",
        "sites[0].devices[0].shutoff_valve: unknown device 'valve-x'",
    ]
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in found), (prefix, found)
    assert len(found) == len(expected_prefixes), found


def test_cross_check_and_rule_problems_reported_together() -> None:
    data = base()
    data["http"] = {"host": "0.0.0.0"}
    device(data, 0)["thresholds"] = {"gas_leak": {"levels": {"level_1": "5 %LEL"}}}
    found = problems_of(data)
    assert any(p.startswith("http.host: ") for p in found), found
    assert any(p.startswith("sites[0].devices[0].thresholds.gas_leak: ") for p in found), found
    assert len(found) == 2


# ------------------------------------------------------ merged thresholds
def test_gas_levels_that_fall_are_reported_with_their_path() -> None:
    data = base()
    device(data, 0)["thresholds"] = {"gas_leak": {"levels": {"level_1": "5 %LEL"}}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("sites[0].devices[0].thresholds.gas_leak: ")
    assert "levels must rise strictly" in found[0]
    assert "[10.0, 5.0, 50.0]" in found[0]


def test_falling_levels_in_type_defaults_reported_with_their_path() -> None:
    data = base()
    data["rules"] = {"defaults": {"gas_detector": {"gas_leak": {"levels": {"level_2": 15}}}}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("rules.defaults.gas_detector.gas_leak: ")
    assert "levels must rise strictly" in found[0]


def test_type_default_fixed_by_device_is_still_reported_where_it_breaks() -> None:
    # Every layer is validated as it is applied: the broken type default is named.
    data = base()
    data["rules"] = {"defaults": {"gas_detector": {"gas_leak": {"levels": {"level_1": 60}}}}}
    device(data, 0)["thresholds"] = {"gas_leak": {"levels": {"level_1": 30}}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("rules.defaults.gas_detector.gas_leak: ")


def test_levels_that_rise_are_accepted() -> None:
    data = base()
    device(data, 0)["thresholds"] = {
        "gas_leak": {"levels": {"pre_alarm": 5, "level_1": "15 %LEL", "level_2": "40 %LEL"}}
    }
    rules = rules_by_device(parse_config(data))
    gas = rule_for(rules["gas-1"], AlarmType.GAS_LEAK)
    assert [(lv.name, lv.at) for lv in gas.levels] == [
        ("pre_alarm", 5.0),
        ("level_1", 15.0),
        ("level_2", 40.0),
    ]
    assert gas.shutoff_level == "level_1"


def test_deadband_that_can_never_clear() -> None:
    data = base()
    device(data, 2)["thresholds"] = {"residual_current": {"deadband": "0.3 A"}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("sites[0].devices[2].thresholds.residual_current: ")
    assert "no way to clear" in found[0]


def test_gas_thresholds_on_a_device_that_measures_no_gas() -> None:
    data = base()
    device(data, 1)["thresholds"] = {"gas_leak": {"levels": {"level_1": 20}}}
    assert problems_of(data) == [
        "sites[0].devices[1].thresholds.gas_leak: "
        "a gas_valve has no gas_leak rule (its rules: none)"
    ]


def test_thresholds_for_a_rule_the_device_type_lacks_are_refused() -> None:
    """A section that would be silently ignored would promise a protection that is not there."""
    data = base()
    device(data, 0)["thresholds"] = {"residual_current": {"alarm": "300 mA"}}
    data["rules"] = {"defaults": {"co_detector": {"overtemperature": {"alarm": "70 C"}}}}
    assert sorted(problems_of(data)) == [
        "rules.defaults.co_detector.overtemperature: a co_detector has no overtemperature rule "
        "(its rules: co)",
        "sites[0].devices[0].thresholds.residual_current: a gas_detector has no residual_current "
        "rule (its rules: gas_leak)",
    ]


def test_overcurrent_enabled_only_with_a_rated_current() -> None:
    data = base()
    assert AlarmType.OVERCURRENT not in alarm_types(rules_by_device(parse_config(data))["efm-1"])

    device(data, 2)["thresholds"] = {"overcurrent": {"alarm": "63 A"}}
    efm = rules_by_device(parse_config(data))["efm-1"]
    oc = rule_for(efm, AlarmType.OVERCURRENT)
    assert oc.quantity == "current_a"
    assert oc.levels[0].at == pytest.approx(63.0)
    assert oc.deadband == pytest.approx(63.0 * 0.05)
    assert oc.on_delay_s == pytest.approx(30.0)
    # the built-in rules of the type are kept beside it
    assert AlarmType.RESIDUAL_CURRENT in alarm_types(efm)
    assert AlarmType.OVERTEMPERATURE in alarm_types(efm)


def test_overcurrent_settings_without_a_rated_current_refused() -> None:
    data = base()
    device(data, 2)["thresholds"] = {"overcurrent": {"on_delay": "5 s"}}
    assert problems_of(data) == [
        "sites[0].devices[2].thresholds.overcurrent.alarm: "
        "set the circuit's rated current to enable this rule"
    ]


def test_overcurrent_rated_in_type_defaults_tuned_per_device() -> None:
    data = base()
    data["rules"] = {"defaults": {"electrical_fire_monitor": {"overcurrent": {"alarm": "40 A"}}}}
    device(data, 2)["thresholds"] = {"overcurrent": {"on_delay": "5 s"}}
    oc = rule_for(rules_by_device(parse_config(data))["efm-1"], AlarmType.OVERCURRENT)
    assert oc.levels[0].at == pytest.approx(40.0)
    assert oc.on_delay_s == pytest.approx(5.0)
    assert oc.deadband == pytest.approx(2.0)


def test_overcurrent_in_milliamps_converted() -> None:
    data = base()
    device(data, 2)["thresholds"] = {"overcurrent": {"alarm": "16000 mA"}}
    oc = rule_for(rules_by_device(parse_config(data))["efm-1"], AlarmType.OVERCURRENT)
    assert oc.levels[0].at == pytest.approx(16.0)


def test_type_defaults_overridden_by_device_thresholds() -> None:
    data = base()
    data["sites"][0]["devices"].append(
        {
            "id": "efm-2",
            "type": "electrical_fire_monitor",
            "location": "kitchen board",
            "thresholds": {"residual_current": {"alarm": "0.5 A"}},
        }
    )
    data["rules"] = {
        "defaults": {
            "electrical_fire_monitor": {
                "residual_current": {"alarm": "400 mA", "on_delay": "20 s"},
                "overtemperature": {"alarm": "60 °C"},
            }
        }
    }
    rules = rules_by_device(parse_config(data))

    plain = rule_for(rules["efm-1"], AlarmType.RESIDUAL_CURRENT)
    assert plain.levels[0].at == pytest.approx(400.0)  # type default
    assert plain.on_delay_s == pytest.approx(20.0)  # type default
    assert plain.deadband == pytest.approx(30.0)  # built-in
    assert plain.off_delay_s == pytest.approx(30.0)  # built-in

    tuned = rule_for(rules["efm-2"], AlarmType.RESIDUAL_CURRENT)
    assert tuned.levels[0].at == pytest.approx(500.0)  # device wins
    assert tuned.on_delay_s == pytest.approx(20.0)  # still the type default
    assert tuned.deadband == pytest.approx(30.0)

    for name in ("efm-1", "efm-2"):
        temp = rule_for(rules[name], AlarmType.OVERTEMPERATURE)
        assert temp.levels[0].at == pytest.approx(60.0)
        assert temp.on_delay_s == pytest.approx(10.0)


def test_type_defaults_apply_only_to_their_type() -> None:
    data = base()
    data["sites"][0]["devices"].append(
        {"id": "ctl-1", "type": "gas_alarm_controller", "location": "boiler room"}
    )
    data["rules"] = {"defaults": {"gas_detector": {"gas_leak": {"off_delay": "10 s"}}}}
    rules = rules_by_device(parse_config(data))
    assert rule_for(rules["gas-1"], AlarmType.GAS_LEAK).off_delay_s == 10.0
    assert rule_for(rules["ctl-1"], AlarmType.GAS_LEAK).off_delay_s == 30.0


def test_builtin_defaults_without_configuration() -> None:
    rules = rules_by_device(parse_config(base()))
    gas = rule_for(rules["gas-1"], AlarmType.GAS_LEAK)
    assert [(lv.name, lv.at) for lv in gas.levels] == [
        ("pre_alarm", 10.0),
        ("level_1", 20.0),
        ("level_2", 50.0),
    ]
    assert (gas.deadband, gas.on_delay_s, gas.off_delay_s) == (2.0, 0.0, 30.0)
    assert alarm_types(rules["efm-1"]) == [AlarmType.RESIDUAL_CURRENT, AlarmType.OVERTEMPERATURE]
    assert rules["valve-1"].thresholds == ()
    assert rules["gas-1"].primary_quantity == "lel"
    assert rules["efm-1"].primary_quantity == "residual_ma"
    assert rules["gas-1"].offline_after_intervals == 3


def test_enabled_false_removes_a_rule() -> None:
    data = base()
    device(data, 2)["thresholds"] = {"overtemperature": {"enabled": False}}
    rules = rules_by_device(parse_config(data))
    assert alarm_types(rules["efm-1"]) == [AlarmType.RESIDUAL_CURRENT]


def test_enabled_false_in_type_defaults_removes_the_rule_for_the_type() -> None:
    data = base()
    data["rules"] = {"defaults": {"gas_detector": {"gas_leak": {"enabled": False}}}}
    rules = rules_by_device(parse_config(data))
    assert rules["gas-1"].thresholds == ()


def test_device_can_enable_again_what_its_type_disabled() -> None:
    # Precedence is "later wins": a device that says enabled: true gets the rule back.
    data = base()
    data["rules"] = {"defaults": {"gas_detector": {"gas_leak": {"enabled": False}}}}
    device(data, 0)["thresholds"] = {"gas_leak": {"enabled": True, "off_delay": "5 s"}}
    rules = rules_by_device(parse_config(data))
    gas = rule_for(rules["gas-1"], AlarmType.GAS_LEAK)
    assert gas.off_delay_s == 5.0
    assert gas.levels[1].at == 20.0


def test_device_tuning_without_enabled_keeps_a_type_disabled_rule_off() -> None:
    data = base()
    data["rules"] = {
        "defaults": {"electrical_fire_monitor": {"overtemperature": {"enabled": False}}}
    }
    device(data, 2)["thresholds"] = {"overtemperature": {"on_delay": "5 s"}}
    rules = rules_by_device(parse_config(data))
    assert alarm_types(rules["efm-1"]) == [AlarmType.RESIDUAL_CURRENT]


def test_device_can_disable_what_its_type_configured() -> None:
    data = base()
    data["rules"] = {"defaults": {"electrical_fire_monitor": {"overcurrent": {"alarm": "32 A"}}}}
    device(data, 2)["thresholds"] = {"overcurrent": {"enabled": False}}
    rules = rules_by_device(parse_config(data))
    assert AlarmType.OVERCURRENT not in alarm_types(rules["efm-1"])


def test_co_rule_tuned_and_disabled() -> None:
    data = base()
    data["sites"][0]["devices"] += [
        {"id": "co-1", "type": "co_detector", "location": "boiler"},
        {
            "id": "co-2",
            "type": "co_detector",
            "location": "boiler",
            "thresholds": {"co": {"clear_below": "20 ppm", "off_delay": "2 min"}},
        },
        {
            "id": "co-3",
            "type": "co_detector",
            "location": "boiler",
            "thresholds": {"co": {"enabled": False}},
        },
    ]
    rules = rules_by_device(parse_config(data))
    co1, co2 = rules["co-1"].co, rules["co-2"].co
    assert co1 is not None
    assert co2 is not None
    assert co1.clear_below_ppm == 30.0
    assert (co2.clear_below_ppm, co2.off_delay_s) == (20.0, 120.0)
    assert rules["co-3"].co is None
    assert rules["gas-1"].co is None


def test_co_clear_above_the_curve_reported() -> None:
    data = base()
    data["sites"][0]["devices"].append(
        {
            "id": "co-1",
            "type": "co_detector",
            "location": "boiler",
            "thresholds": {"co": {"clear_below": "80 ppm"}},
        }
    )
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("sites[0].devices[3].thresholds.co: ")


@pytest.mark.parametrize(
    ("dtype", "interval"),
    [
        ("gas_detector", 30.0),
        ("gas_alarm_controller", 30.0),
        ("co_detector", 60.0),
        ("gas_valve", 60.0),
        ("electrical_fire_monitor", 30.0),
        ("alarm_button", 300.0),
        ("smoke_detector", 300.0),
    ],
)
def test_report_interval_defaults_per_type(dtype: str, interval: float) -> None:
    data = base()
    data["sites"][0]["devices"].append({"id": "dev-x", "type": dtype, "location": "x"})
    rules = rules_by_device(parse_config(data))
    assert rules["dev-x"].type is DeviceType(dtype)
    assert rules["dev-x"].report_interval_s == interval


def test_report_interval_override() -> None:
    data = base()
    device(data, 0)["report_interval"] = "2 min"
    device(data, 1)["report_interval"] = 45
    data["rules"] = {"offline_after_intervals": 5}
    rules = rules_by_device(parse_config(data))
    assert rules["gas-1"].report_interval_s == 120.0
    assert rules["gas-1"].stale_after_s == 600.0
    assert rules["valve-1"].report_interval_s == 45.0
    assert rules["efm-1"].report_interval_s == 30.0


def test_valve_timing_from_rules_section() -> None:
    data = base()
    data["rules"] = {"valve_confirm_timeout": "15 s", "valve_retry_interval": "1 min"}
    rules = rules_by_device(parse_config(data))
    assert rules["gas-1"].valve_confirm_timeout_s == 15.0
    assert rules["gas-1"].valve_retry_interval_s == 60.0


def test_unknown_type_in_rules_defaults() -> None:
    data = base()
    data["rules"] = {"defaults": {"teapot": {}}}
    found = problems_of(data)
    assert len(found) == 1, found
    assert found[0].startswith("rules.defaults.teapot")
