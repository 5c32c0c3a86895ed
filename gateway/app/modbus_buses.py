"""`ModbusBuses`: the polled buses of the running configuration, one `ModbusLink` each, so
that a configuration reload restarts only the buses whose devices or settings changed.

It stands where a single link did for the actuator and the alarm actions (which device is
on which bus, what its profile can do); the supervisor runs one task per bus.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from drivers.modbus.link import BusPlan, ModbusLink
from drivers.modbus.poller import ModbusBus, jitter_p99
from drivers.modbus.target import RawRegisters
from gateway.config.schema import GatewayConfig
from gateway.ingest.modbus_plan import modbus_plan
from rules.model import CommandKind, DeviceRef

Signature = tuple[object, ...]


def _signature(plan: BusPlan) -> Signature:
    """What makes two plans of one bus the same: its endpoint and what it polls, how."""
    return (
        plan.endpoint,
        tuple(
            (
                t.ref,
                t.profile,  # a profile file changed under the same name counts too
                t.unit,
                t.interval_s,
                t.offline_after_failures,
                t.retries,
                tuple(sorted(t.channel_refs.items())),
            )
            for t in plan.targets
        ),
    )


@dataclass(frozen=True, slots=True)
class BusChange:
    """A reload's effect on the buses: links to stop (old) and to start (new), by bus."""

    stopped: dict[str, ModbusLink]
    started: dict[str, ModbusLink]


class ModbusBuses:
    def __init__(self, config: GatewayConfig) -> None:
        self.links: dict[str, ModbusLink] = {}
        self._signatures: dict[str, Signature] = {}
        self._link_of: dict[DeviceRef, ModbusLink] = {}
        self.reconfigure(config)

    def reconfigure(self, config: GatewayConfig) -> BusChange:
        """Route to the buses of `config` from now on; the caller stops and starts the
        links in the returned change (an unchanged bus keeps its link and its task)."""
        plans = {p.endpoint.name: p for p in modbus_plan(config)}
        stopped: dict[str, ModbusLink] = {}
        started: dict[str, ModbusLink] = {}
        for name in list(self.links):
            if name not in plans or _signature(plans[name]) != self._signatures[name]:
                stopped[name] = self.links.pop(name)
                del self._signatures[name]
        for name, plan in plans.items():
            if name not in self.links:
                started[name] = self.links[name] = ModbusLink([plan])
                self._signatures[name] = _signature(plan)
        self._link_of = {ref: link for link in self.links.values() for ref in _refs(link)}
        return BusChange(stopped, started)

    def __bool__(self) -> bool:
        return bool(self.links)

    @property
    def buses(self) -> list[ModbusBus]:
        """Every bus polled now (as `ModbusLink.buses`: for health, tests and benchmarks)."""
        return [bus for link in self.links.values() for bus in link.buses]

    def handles(self, ref: DeviceRef) -> bool:
        return ref in self._link_of

    def supports(self, ref: DeviceRef, cmd: CommandKind) -> bool:
        link = self._link_of.get(ref)
        return link is not None and link.supports(ref, cmd)

    def submit(self, ref: DeviceRef, cmd: CommandKind, command_id: str) -> bool:
        link = self._link_of.get(ref)
        return link is not None and link.submit(ref, cmd, command_id)

    def last_registers(self, ref: DeviceRef) -> RawRegisters | None:
        """The raw registers of a polled device's last answered poll (commissioning)."""
        link = self._link_of.get(ref)
        return link.last_registers(ref) if link is not None else None

    def stats(self) -> dict[str, Any]:
        buses = self.buses
        targets = [t for bus in buses for t in bus.targets]
        return {
            "buses": len(buses),
            "devices": len(targets),
            "offline": sum(1 for t in targets if t.offline),
            "reads": sum(b.stats.reads for b in buses),
            "failed_reads": sum(b.stats.failed_reads for b in buses),
            "crc_errors": sum(b.stats.crc_errors for b in buses),
            "writes": sum(b.stats.writes for b in buses),
            "jitter_p99_ms": round(jitter_p99(targets) * 1000, 1),
        }


def pending_commands(link: ModbusLink) -> int:
    return sum(bus.pending_commands for bus in link.buses)


def _refs(link: ModbusLink) -> Iterator[DeviceRef]:
    for bus in link.buses:
        for target in bus.targets:
            yield target.ref
