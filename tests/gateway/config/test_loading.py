"""Loading a configuration file: strict YAML, then the schema, the checks and the rules, every
problem reported at once with its exact path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config.errors import ConfigError, ConfigProblem
from gateway.config.loading import load_config, parse_config
from rules.model import AlarmType, DeviceRef
from tests.support.config import (
    DEMO_SITE,
    base,
    device,
    problems_of,
    rule_for,
    rules_by_device,
    yaml_problems,
)


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


# ----------------------------------------------------------------------- YAML
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


# ------------------------------------------------------ many problems at once
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
