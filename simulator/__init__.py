"""Simulated field devices and scenarios for demos, tests and benchmarks."""

from __future__ import annotations

from gateway.config import GatewayConfig
from simulator.devices import BrokerAddress
from simulator.scenarios import SCENARIOS, ScenarioError, SimSite, run_scenario

__all__ = [
    "SCENARIOS",
    "BrokerAddress",
    "ScenarioError",
    "SimSite",
    "run_scenario",
    "site_from_config",
]


def site_from_config(
    config: GatewayConfig,
    broker: BrokerAddress,
    site_id: str | None = None,
    interval_s: float = 5.0,
    speed: float = 1.0,
) -> SimSite:
    site = next((s for s in config.sites if site_id in (None, s.id)), None)
    if site is None:
        raise ScenarioError(f"no site {site_id!r} in the configuration")
    devices = [(d.id, d.type.value, d.shutoff_valve) for d in site.devices if d.transport == "mqtt"]
    return SimSite.from_config(broker, site.id, devices, interval_s, speed)
