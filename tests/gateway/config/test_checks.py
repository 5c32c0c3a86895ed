"""The checks that need the whole file: duplicate ids, references (valves, sites, channels,
profiles), rules for the device type, exposure without tokens, missing secrets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.config.checks import missing_secrets
from gateway.config.loading import parse_config
from gateway.config.ruleset import build_rules
from rules.model import AlarmType, DeviceRef
from tests.support.config import (
    alarm_types,
    base,
    device,
    problems_of,
    rules_by_device,
)


# ------------------------------------------------------------- ids and valves
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


# ---------------------------------------------------- http tokens and secrets
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


# --------------------------------------------------------------------- modbus
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


# --------------------------------------------- thresholds for the device type
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


# ------------------------------------------------------------- central mode
def test_a_site_served_by_edge_names_its_edge_gateway() -> None:
    data = base()
    data["sites"][0]["served_by"] = "edge"
    (problem,) = problems_of(data)
    assert problem.startswith("sites[0]") and "must name its edge_gateway" in problem
    data["sites"][0]["edge_gateway"] = "edge-a"
    assert parse_config(data).sites[0].edge_gateway == "edge-a"


def test_edge_gateway_is_refused_on_a_site_this_gateway_serves() -> None:
    data = base()
    data["sites"][0]["edge_gateway"] = "edge-a"
    (problem,) = problems_of(data)
    assert problem.startswith("sites[0]") and "only for a site served_by edge" in problem


@pytest.mark.parametrize("gateway", ["gw-1", "a/b", "+", ""])
def test_edge_gateway_is_another_gateways_id(gateway: str) -> None:
    data = base()
    data["sites"][0] |= {"served_by": "edge", "edge_gateway": gateway}
    (problem,) = problems_of(data)
    assert problem.startswith("sites[0].edge_gateway")
