"""Simulated field devices and scenarios for demos, tests and benchmarks."""

from __future__ import annotations

import contextlib

from drivers.modbus.profile import all_profiles
from gateway.config.checks import is_loopback
from gateway.config.schema import GatewayConfig
from simulator.devices import BASELINE, BrokerAddress, make_device
from simulator.modbus_device import SimModbusDevice
from simulator.modbus_server import SimModbusServer
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
    broker: BrokerAddress | None,
    site_id: str | None = None,
    interval_s: float = 5.0,
    speed: float = 1.0,
    travel_s: float = 1.0,
) -> SimSite:
    """Simulate every device of one site: MQTT devices through `broker`, Modbus TCP devices
    as pymodbus servers on their configured (loopback) ports."""
    site = next((s for s in config.sites if site_id in (None, s.id)), None)
    if site is None:
        raise ScenarioError(f"no site {site_id!r} in the configuration")
    sim = SimSite(site.id, {d.id: d.type.value for d in site.devices}, speed=speed)
    sim.links = {d.id: d.shutoff_valve for d in site.devices if d.shutoff_valve}
    profiles = all_profiles(tuple(config.gateway.profile_dirs))
    servers: dict[int, SimModbusServer] = {}
    for d in site.devices:
        if d.transport == "mqtt":
            if broker is None:
                raise ScenarioError("MQTT devices need a broker: give --broker host:port")
            sim.mqtt[d.id] = make_device(broker, site.id, d.id, d.type.value, interval_s)
        elif d.modbus is not None:
            ep = d.modbus
            if ep.host is None or not is_loopback(ep.host):
                raise ScenarioError(
                    f"{d.id}: only Modbus TCP devices on 127.0.0.1 can be simulated"
                )
            device = SimModbusDevice(profiles[ep.profile], ep.unit, travel_s=travel_s)
            channels = range(1, (device.profile.channels or 0) + 1)
            for quantity, value in {**BASELINE.get(d.type.value, {}), "open": 1.0}.items():
                for channel in (None, *channels):
                    with contextlib.suppress(KeyError):  # the profile may not measure it
                        device.set_quantity(quantity, value, channel=channel)
            server = servers.setdefault(ep.port, SimModbusServer(port=ep.port))
            server.add(device)
            sim.modbus[d.id] = device
            for channel, detector in d.channels.items():
                sim.channels[detector] = (d.id, channel)
    sim.servers = list(servers.values())
    return sim
