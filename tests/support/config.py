"""Configurations for the configuration tests: a small valid file that each test breaks in one
place, and ways to read the problems and the rules that come out of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config.errors import ConfigError
from gateway.config.loading import load_config, parse_config
from gateway.config.ruleset import build_rules
from gateway.config.schema import GatewayConfig
from rules.engine import DeviceRules
from rules.model import AlarmType

DEMO_SITE = Path(__file__).resolve().parents[2] / "gateway" / "cli" / "demo_site.yaml"


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
