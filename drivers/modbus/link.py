"""The Modbus side of a gateway: one client and poller per bus, commands routed to their bus.

Given `BusPlan`s (built from the configuration by `gateway.ingest.modbus_plan`), gives each
bus its pymodbus client and its `PollTarget`s (a gas alarm controller is one target whose
channels are the detectors that list it), and routes commands for Modbus devices to their
bus. Imports nothing of the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from drivers.modbus.client import frame_gap_s
from drivers.modbus.poller import DEAD_SHARE, ModbusBus, jitter_p99
from drivers.modbus.target import CommandJob, PollSink, PollTarget, RawRegisters
from rules.model import CommandKind, DeviceRef

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BusEndpoint:
    """One bus: a TCP host:port or a serial port. Requests on one bus are serialised."""

    name: str
    host: str | None = None
    port: int = 502
    serial: str | None = None
    baudrate: int = 9600
    parity: str = "N"  # N, E or O
    stopbits: int = 1
    timeout: float = 1.0  # per request
    dead_share: float = DEAD_SHARE  # of the bus's time, for the devices not answering

    @property
    def gap_s(self) -> float:
        """Silence kept between requests: the RTU inter-frame gap on a serial bus."""
        return frame_gap_s(self.baudrate) if self.serial is not None else 0.0


@dataclass(frozen=True, slots=True)
class BusPlan:
    endpoint: BusEndpoint
    targets: tuple[PollTarget, ...]


class ModbusLink:
    def __init__(self, buses: Sequence[BusPlan]) -> None:
        self._targets: dict[DeviceRef, PollTarget] = {}
        self._bus_of: dict[DeviceRef, ModbusBus] = {}
        self.buses: list[ModbusBus] = []
        for plan in sorted(buses, key=lambda b: b.endpoint.name):
            ep = plan.endpoint
            bus = ModbusBus(
                ep.name,
                _client_factory(ep),
                plan.targets,
                gap_s=ep.gap_s,
                dead_share=ep.dead_share,
            )
            self.buses.append(bus)
            for t in plan.targets:
                self._targets[t.ref] = t
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

    def last_registers(self, ref: DeviceRef) -> RawRegisters | None:
        """The raw registers of the device's last answered poll (None before one)."""
        bus = self._bus_of.get(ref)
        return bus.last_registers(ref) if bus is not None else None

    def stop(self) -> None:
        for bus in self.buses:
            bus.stopping = True

    async def run(self, sink: PollSink) -> None:
        async with asyncio.TaskGroup() as tg:
            for bus in self.buses:
                tg.create_task(bus.run(sink), name=f"modbus {bus.name}")

    def stats(self) -> dict[str, Any]:
        targets = list(self._targets.values())
        return {
            "buses": len(self.buses),
            "devices": len(targets),
            "offline": sum(1 for t in targets if t.offline),
            "reads": sum(b.stats.reads for b in self.buses),
            "failed_reads": sum(b.stats.failed_reads for b in self.buses),
            "crc_errors": sum(b.stats.crc_errors for b in self.buses),
            "writes": sum(b.stats.writes for b in self.buses),
            "jitter_p99_ms": round(jitter_p99(targets) * 1000, 1),
        }


def _client_factory(ep: BusEndpoint) -> Callable[[], Any]:
    # Retries are ours (per poll, with backoff); pymodbus's own would hide failures.
    timeout = ep.timeout
    if ep.host is not None:
        host, port = ep.host, ep.port
        return lambda: AsyncModbusTcpClient(
            host, port=port, timeout=timeout, retries=0, reconnect_delay=0
        )
    serial, baudrate, parity, stopbits = ep.serial, ep.baudrate, ep.parity, ep.stopbits
    assert serial is not None
    return lambda: AsyncModbusSerialClient(
        serial,
        baudrate=baudrate,
        parity=parity,
        stopbits=stopbits,
        timeout=timeout,
        retries=0,
        reconnect_delay=0,
    )
