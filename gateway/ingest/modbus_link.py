"""The gateway's Modbus side: buses built from the configuration, results into the pipeline.

Groups the configured Modbus devices by bus (`tcp://host:port` or `rtu://port`), gives each
bus its client and its `PollTarget`s (a gas alarm controller is one target whose channels
are the detectors that list it), and routes commands for Modbus devices to their bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from drivers.modbus.poller import CommandJob, ModbusBus, PollSink, PollTarget, jitter_p99
from drivers.modbus.profile import Profile, all_profiles
from gateway.config.schema import GatewayConfig, ModbusEndpoint, poll_interval
from rules.model import CommandKind, DeviceRef

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModbusCommand:
    """What the pipeline needs back when a Modbus command's outcome is known."""

    command_id: str
    ref: DeviceRef
    cmd: CommandKind


class ModbusLink:
    def __init__(self, config: GatewayConfig, sink: PollSink) -> None:
        self.profiles: dict[str, Profile] = all_profiles(tuple(config.gateway.profile_dirs))
        by_bus: dict[str, list[PollTarget]] = {}
        endpoints: dict[str, ModbusEndpoint] = {}
        self._targets: dict[DeviceRef, PollTarget] = {}
        self._bus_of: dict[DeviceRef, ModbusBus] = {}
        for site in config.sites:
            for dev in site.devices:
                if dev.modbus is None:
                    continue
                ep = dev.modbus
                target = PollTarget(
                    ref=DeviceRef(site.id, dev.id),
                    profile=self.profiles[ep.profile],
                    unit=ep.unit,
                    interval_s=poll_interval(dev),
                    offline_after_failures=ep.offline_after_failures,
                    retries=ep.retries,
                    channel_refs={ch: DeviceRef(site.id, det) for ch, det in dev.channels.items()},
                )
                by_bus.setdefault(ep.bus, []).append(target)
                endpoints.setdefault(ep.bus, ep)
                self._targets[target.ref] = target
        self.buses: list[ModbusBus] = []
        for name, targets in sorted(by_bus.items()):
            timeout = min(
                (
                    d.modbus.timeout
                    for _, d in config.devices()
                    if d.modbus and d.modbus.bus == name
                ),
                default=1.0,
            )
            bus = ModbusBus(name, _client_factory(endpoints[name], timeout), targets, sink)
            self.buses.append(bus)
            for t in targets:
                self._bus_of[t.ref] = bus

    def __bool__(self) -> bool:
        return bool(self.buses)

    def handles(self, ref: DeviceRef) -> bool:
        return ref in self._targets

    def supports(self, ref: DeviceRef, cmd: CommandKind) -> bool:
        target = self._targets.get(ref)
        return target is not None and target.profile.command(cmd) is not None

    def submit(self, ref: DeviceRef, cmd: CommandKind, command_id: str) -> bool:
        """Queue a command on the device's bus; False if its profile cannot do it."""
        target = self._targets.get(ref)
        actuation = target.profile.command(cmd) if target else None
        if target is None or actuation is None:
            return False
        self._bus_of[ref].submit(CommandJob(target, cmd, actuation, command_id))
        return True

    def stop(self) -> None:
        for bus in self.buses:
            bus.stopping = True

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for bus in self.buses:
                tg.create_task(bus.run(), name=f"modbus {bus.name}")

    def stats(self) -> dict[str, Any]:
        targets = list(self._targets.values())
        return {
            "buses": len(self.buses),
            "devices": len(targets),
            "offline": sum(1 for t in targets if t.offline),
            "reads": sum(b.stats.reads for b in self.buses),
            "failed_reads": sum(b.stats.failed_reads for b in self.buses),
            "writes": sum(b.stats.writes for b in self.buses),
            "jitter_p99_ms": round(jitter_p99(targets) * 1000, 1),
        }


def _client_factory(ep: ModbusEndpoint, timeout: float) -> Callable[[], Any]:
    # Retries are ours (per poll, with backoff); pymodbus's own would hide failures.
    if ep.host is not None:
        host, port = ep.host, ep.port
        return lambda: AsyncModbusTcpClient(
            host, port=port, timeout=timeout, retries=0, reconnect_delay=0
        )
    serial, baudrate = ep.serial, ep.baudrate
    assert serial is not None
    return lambda: AsyncModbusSerialClient(
        serial, baudrate=baudrate, timeout=timeout, retries=0, reconnect_delay=0
    )
