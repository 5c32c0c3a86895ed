"""The rule set built from the configuration: built-in defaults, then type defaults, then the
device, every merged rule validated again and reported with the path of the layer that broke it."""

from __future__ import annotations

import pytest

from gateway.config.loading import parse_config
from rules.model import AlarmType, DeviceType
from tests.support.config import (
    alarm_types,
    base,
    device,
    problems_of,
    rule_for,
    rules_by_device,
)


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


# ---------------------------------------------------------- merged thresholds
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
