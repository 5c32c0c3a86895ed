"""The Modbus buses to poll, from the configuration: devices grouped by bus, each with its
profile (loaded once, with the configuration) and polling settings."""

from __future__ import annotations

from drivers.modbus.link import BusEndpoint, BusPlan
from drivers.modbus.target import PollTarget
from gateway.config.schema import GatewayConfig, ModbusEndpoint, poll_interval
from rules.model import DeviceRef


def modbus_plan(config: GatewayConfig) -> list[BusPlan]:
    """One plan per bus; the profiles are read only when a device is polled."""
    targets: dict[str, list[PollTarget]] = {}
    endpoints: dict[str, ModbusEndpoint] = {}
    timeouts: dict[str, float] = {}
    shares: dict[str, float] = {}
    for site in config.sites:
        for dev in site.devices:
            ep = dev.modbus
            if ep is None:
                continue
            targets.setdefault(ep.bus, []).append(
                PollTarget(
                    ref=DeviceRef(site.id, dev.id),
                    profile=config.profiles[ep.profile],
                    unit=ep.unit,
                    interval_s=poll_interval(dev),
                    offline_after_failures=ep.offline_after_failures,
                    retries=ep.retries,
                    channel_refs={ch: DeviceRef(site.id, det) for ch, det in dev.channels.items()},
                )
            )
            endpoints.setdefault(ep.bus, ep)
            # One bus, one timeout: the shortest any of its devices asks for.
            timeouts[ep.bus] = min(timeouts.get(ep.bus, ep.timeout), ep.timeout)
            shares[ep.bus] = min(shares.get(ep.bus, ep.dead_share), ep.dead_share)
    return [
        BusPlan(
            BusEndpoint(
                name,
                host=endpoints[name].host,
                port=endpoints[name].port,
                serial=endpoints[name].serial,
                baudrate=endpoints[name].baudrate,
                parity=endpoints[name].parity,
                stopbits=endpoints[name].stopbits,
                timeout=timeouts[name],
                dead_share=shares[name],
            ),
            tuple(found),
        )
        for name, found in sorted(targets.items())
    ]
