"""What a bus polls and actuates: its devices (`PollTarget`, with their polling state), the
commands waiting for read-back (`CommandJob`), and where results go (`PollSink`).

Plain data, shared by the poller (`poller`), command execution (`actuation`) and the
gateway, which builds the targets from its configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from drivers.modbus.codec import ReadBlock, plan_reads
from drivers.modbus.profile import Actuation, Profile
from rules.model import CommandKind, DeviceRef


class PollSink(Protocol):
    """Where poll results go (`gateway.ingest.modbus_sink`). All calls are synchronous."""

    def poll_values(self, ref: DeviceRef, values: dict[str, float]) -> None: ...
    def poll_unreachable(self, ref: DeviceRef) -> None: ...
    def poll_fault(self, ref: DeviceRef, source: str, active: bool, detail: str) -> None: ...
    def poll_command_result(self, job: CommandJob, ok: bool, detail: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RawRegisters:
    """A device's last answered poll as read: each block with its registers (or bits)."""

    at: float  # the bus clock (monotonic) when it was read
    blocks: tuple[tuple[ReadBlock, tuple[int, ...]], ...]


@dataclass(slots=True)
class PollTarget:
    """One polled device (a controller counts once; its channels fan out)."""

    ref: DeviceRef
    profile: Profile
    unit: int
    interval_s: float
    offline_after_failures: int = 3
    retries: int = 1
    channel_refs: dict[int, DeviceRef] = field(default_factory=dict)
    blocks: tuple[ReadBlock, ...] = ()
    # runtime state
    due: float = 0.0
    failures: int = 0
    offline: bool = False
    refusing: bool = False  # answered with exception responses
    faulted: dict[DeviceRef, bool] = field(default_factory=dict)  # status-bit faults reported
    awaiting: list[CommandJob] = field(default_factory=list)
    polls: int = 0
    jitter: list[float] = field(default_factory=list)
    busy_s: float = 0.0  # bus time its polls took, failed ones included
    last_registers: RawRegisters | None = None

    def __post_init__(self) -> None:
        if not self.blocks:
            self.blocks = plan_reads(self.profile)

    def refs(self) -> list[DeviceRef]:
        return [self.ref, *self.channel_refs.values()]

    def ref_for(self, channel: int | None) -> DeviceRef | None:
        return self.ref if channel is None else self.channel_refs.get(channel)


@dataclass(slots=True)
class CommandJob:
    target: PollTarget
    cmd: CommandKind
    actuation: Actuation
    command_id: str
    deadline: float = 0.0  # monotonic, set when written
