"""Modbus polling and actuation (pymodbus async clients, TCP and RTU).

One `ModbusBus` per bus (a TCP host:port, or a serial port) owns its client and runs one
task: requests on a bus are strictly serialised, as RS-485 requires and as most TCP
gateways in front of RS-485 do too; different buses run concurrently. The task picks the
device whose poll is due next, and a queued command always goes before the next poll.

A poll reads the profile's merged blocks (`plan_reads`), decodes them and hands the result
to a `PollSink` (`gateway.ingest.modbus_sink`) as plain values, faults and availability: the rule
engine never learns which transport a reading came from.

Failures are typed: `DeviceTimeout` and `ConnectionLost` count towards `device_offline`
after `offline_after_failures` consecutive failed polls; an `ExceptionResponse` means the
device answered but refused, which is a `device_fault`. Each change of state is logged
once; a device that is offline is polled less often, so that on a shared bus it takes as
little time as possible from the devices that still answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.modbus.codec import Decoded, ReadBlock, decode, plan_reads
from drivers.modbus.profile import Actuation, Profile, Table
from rules.model import CommandKind, DeviceRef

log = logging.getLogger(__name__)

OFFLINE_POLL_INTERVAL_S = 10.0  # how often a device that stopped answering is retried
CONFIRM_POLL_INTERVAL_S = 0.5  # while a command waits for its confirmation
RETRY_BACKOFF_S = 0.05


class ModbusFailure(Exception):
    retryable = True


class DeviceTimeout(ModbusFailure):
    """No answer within the timeout: the device (or the line to it) is not there."""


class ConnectionLost(ModbusFailure):
    """The TCP connection (or serial port) is down: nothing on the bus can answer."""


class ExceptionResponse(ModbusFailure):
    """The device answered with a Modbus exception: it is alive but refuses the request."""

    retryable = False

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"exception code {code}: {detail}")
        self.code = code


EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class PollSink(Protocol):
    """Where poll results go (the gateway's ingest). All calls are synchronous."""

    def poll_values(self, ref: DeviceRef, values: dict[str, float]) -> None: ...
    def poll_unreachable(self, ref: DeviceRef) -> None: ...
    def poll_fault(self, ref: DeviceRef, source: str, active: bool, detail: str) -> None: ...
    def poll_command_result(self, job: CommandJob, ok: bool, detail: str) -> None: ...


class _NoSink:
    """Before `run`: nothing is polled, so nothing arrives."""

    def poll_values(self, ref: DeviceRef, values: dict[str, float]) -> None: ...
    def poll_unreachable(self, ref: DeviceRef) -> None: ...
    def poll_fault(self, ref: DeviceRef, source: str, active: bool, detail: str) -> None: ...
    def poll_command_result(self, job: CommandJob, ok: bool, detail: str) -> None: ...


_NO_SINK = _NoSink()


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


@dataclass(slots=True)
class BusStats:
    reads: int = 0
    failed_reads: int = 0
    writes: int = 0


ClientFactory = Callable[[], AsyncModbusTcpClient | AsyncModbusSerialClient]


class ModbusBus:
    JITTER_SAMPLES = 1000

    def __init__(
        self,
        name: str,
        client_factory: ClientFactory,
        targets: Sequence[PollTarget],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._factory = client_factory
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self.targets = list(targets)
        self._sink: PollSink = _NO_SINK
        self._clock = clock
        self._commands: asyncio.Queue[CommandJob] = asyncio.Queue()
        self._wake = asyncio.Event()
        self.stats = BusStats()
        self._connected_logged: bool | None = None
        # pymodbus waits with asyncio.wait_for, which in 3.11 can swallow a cancel; the
        # flag makes the loop end anyway once the request in hand returns.
        self.stopping = False

    def submit(self, job: CommandJob) -> None:
        """Queue a command; it goes out before the next poll on this bus."""
        self._commands.put_nowait(job)
        self._wake.set()

    @property
    def pending_commands(self) -> int:
        return self._commands.qsize()

    async def run(self, sink: PollSink) -> None:
        """Poll until stopped; results go to `sink` (given here: what it decides may send
        commands back to this bus)."""
        self._sink = sink
        now = self._clock()
        for i, t in enumerate(self.targets):
            # Spread first polls over one interval so a bus is not hit by all at once.
            t.due = now + (i / max(1, len(self.targets))) * t.interval_s * 0.5
        try:
            while not self.stopping:
                if not self._commands.empty():
                    await self._execute(self._commands.get_nowait())
                    continue
                target = min(self.targets, key=lambda t: t.due) if self.targets else None
                wait = (target.due - self._clock()) if target is not None else 3600.0
                if wait > 0:
                    self._wake.clear()
                    # asyncio.wait, not wait_for: 3.11's wait_for can swallow a cancel.
                    waiter = asyncio.ensure_future(self._wake.wait())
                    try:
                        await asyncio.wait({waiter}, timeout=wait)
                    finally:
                        waiter.cancel()
                    continue
                assert target is not None
                await self._poll(target)
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --------------------------------------------------------------- polling
    async def _poll(self, t: PollTarget) -> None:
        started = self._clock()
        if len(t.jitter) < self.JITTER_SAMPLES:
            t.jitter.append(started - t.due)
        t.polls += 1
        results: dict[ReadBlock, list[int]] = {}
        try:
            for block in t.blocks:
                results[block] = await self._read(t, block)
        except ExceptionResponse as exc:
            self._refused(t, exc)
            self._expire(t, f"device refuses: {exc}")
        except ModbusFailure as exc:
            self._failed(t, exc)
            self._expire(t, f"device not answering: {exc}")
        else:
            self._answered(t, decode(t.profile, results))
        self._schedule(t, started)

    def _schedule(self, t: PollTarget, started: float) -> None:
        if t.offline:
            interval = max(t.interval_s, OFFLINE_POLL_INTERVAL_S)
        elif t.awaiting:
            interval = min(t.interval_s, CONFIRM_POLL_INTERVAL_S)
        else:
            interval = t.interval_s
        # Keep the rhythm (due + interval) unless we fell behind; never catch up in a burst.
        t.due = max(t.due + interval, started + interval * 0.5)
        t.due = max(t.due, self._clock())

    def _answered(self, t: PollTarget, decoded: Decoded) -> None:
        if t.offline:
            log.warning("modbus %s unit %d (%s) answers again", self.name, t.unit, t.ref)
        t.failures = 0
        t.offline = False
        if t.refusing:
            t.refusing = False
            for ref in t.refs():
                self._sink.poll_fault(ref, "exception_response", False, "answers normally again")
        for channel, values in decoded.values.items():
            target_ref = t.ref_for(channel)
            if target_ref is not None and values:
                self._sink.poll_values(target_ref, values)
        for channel in {None, *t.channel_refs}:
            flagged = t.ref_for(channel)
            if flagged is None:
                continue
            active = decoded.faults.get(channel, [])
            if bool(active) != t.faulted.get(flagged, False):
                t.faulted[flagged] = bool(active)
                detail = ", ".join(active) or "cleared"
                self._sink.poll_fault(flagged, "status_bits", bool(active), detail)
        if decoded.invalid:
            log.warning("modbus %s: %s: undecodable points %s", self.name, t.ref, decoded.invalid)
        self._check_confirmations(t, decoded)

    def _refused(self, t: PollTarget, exc: ExceptionResponse) -> None:
        t.failures = 0
        t.offline = False
        if not t.refusing:
            t.refusing = True
            log.warning("modbus %s unit %d (%s) refuses: %s", self.name, t.unit, t.ref, exc)
            for ref in t.refs():
                self._sink.poll_fault(ref, "exception_response", True, str(exc))

    def _failed(self, t: PollTarget, exc: ModbusFailure) -> None:
        t.failures += 1
        if t.failures >= t.offline_after_failures and not t.offline:
            t.offline = True
            log.warning(
                "modbus %s unit %d (%s) offline after %d failed polls: %s",
                self.name,
                t.unit,
                t.ref,
                t.failures,
                exc,
            )
            for ref in t.refs():
                self._sink.poll_unreachable(ref)

    async def _read(self, t: PollTarget, block: ReadBlock) -> list[int]:
        attempt = 0
        while True:
            try:
                return await self._read_once(t.unit, block)
            except ExceptionResponse:
                raise
            except ModbusFailure:
                self.stats.failed_reads += 1
                if attempt >= t.retries:
                    raise
                attempt += 1
                await asyncio.sleep(RETRY_BACKOFF_S * attempt)

    async def _client_ready(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            self._client = self._factory()
        client = self._client
        if not client.connected:
            ok = await client.connect()
            if self._connected_logged is not ok:
                self._connected_logged = ok
                if ok:
                    log.info("modbus %s connected", self.name)
                else:
                    log.warning("modbus %s: cannot connect; retrying on each poll", self.name)
            if not ok:
                raise ConnectionLost(f"{self.name}: cannot connect")
        return client

    async def _read_once(self, unit: int, block: ReadBlock) -> list[int]:
        client = await self._client_ready()
        read = {
            Table.HOLDING: client.read_holding_registers,
            Table.INPUT: client.read_input_registers,
            Table.COIL: client.read_coils,
            Table.DISCRETE_INPUT: client.read_discrete_inputs,
        }[block.table]
        self.stats.reads += 1
        try:
            rr: Any = await read(block.start, count=block.count, device_id=unit)
        except ConnectionException as exc:
            raise ConnectionLost(str(exc)) from None
        except ModbusIOException as exc:
            raise DeviceTimeout(str(exc)) from None
        except ModbusException as exc:
            raise DeviceTimeout(str(exc)) from None
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0))
            raise ExceptionResponse(code, EXCEPTION_NAMES.get(code, "unknown"))
        if block.table.is_bit_table:
            return [int(b) for b in rr.bits[: block.count]]
        return list(rr.registers)

    # -------------------------------------------------------------- actuation
    async def _execute(self, job: CommandJob) -> None:
        a = job.actuation
        t = job.target
        try:
            client = await self._client_ready()
            self.stats.writes += 1
            if a.table is Table.COIL:
                rr: Any = await client.write_coil(a.address, bool(a.value), device_id=t.unit)
            else:
                rr = await client.write_register(a.address, a.value, device_id=t.unit)
        except (ModbusFailure, ModbusException) as exc:
            self._sink.poll_command_result(job, False, f"write failed: {exc}")
            return
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0))
            self._sink.poll_command_result(
                job, False, f"refused: {EXCEPTION_NAMES.get(code, code)}"
            )
            return
        # Written: confirmation comes from reading the feedback point back, by polling the
        # device at once and then often until it confirms or the deadline passes.
        job.deadline = self._clock() + a.confirm.timeout_s
        t.awaiting.append(job)
        t.due = self._clock()

    def _check_confirmations(self, t: PollTarget, decoded: Decoded) -> None:
        if not t.awaiting:
            return
        now = self._clock()
        still: list[CommandJob] = []
        for job in t.awaiting:
            value = decoded.raw.get(job.actuation.confirm.point)
            if value is not None and abs(value - job.actuation.confirm.equals) < 1e-9:
                self._sink.poll_command_result(
                    job, True, f"{job.actuation.confirm.point} = {value:g}"
                )
            elif now >= job.deadline:
                self._sink.poll_command_result(
                    job, False, f"not confirmed: {job.actuation.confirm.point} = {value}"
                )
            else:
                still.append(job)
        t.awaiting = still

    def _expire(self, t: PollTarget, why: str) -> None:
        """A command whose device stopped answering still gets its verdict at the deadline."""
        now = self._clock()
        for job in [j for j in t.awaiting if now >= j.deadline]:
            self._sink.poll_command_result(job, False, why)
        t.awaiting = [j for j in t.awaiting if now < j.deadline]


def jitter_p99(targets: Sequence[PollTarget]) -> float:
    samples = sorted(s for t in targets for s in t.jitter[1:])  # the first is start-up spread
    if not samples:
        return 0.0
    return samples[min(len(samples) - 1, int(len(samples) * 0.99))]
