"""Modbus polling: one `ModbusBus` per bus (a TCP host:port, or a serial port), one task each.

Requests on a bus are strictly serialised, as RS-485 requires and as most TCP gateways in
front of RS-485 do too; different buses run concurrently. The task picks the device whose
poll is due next, and a queued command always goes before the next poll (the write and its
read-back confirmation are `actuation`'s; the client and its typed failures `client`'s).

A poll reads the profile's merged blocks (`plan_reads`), decodes them and hands the result
to a `PollSink` (`gateway.ingest.modbus_sink`) as plain values, faults and availability: the rule
engine never learns which transport a reading came from.

`DeviceTimeout`, `CorruptAnswer` and `ConnectionLost` count towards `device_offline` after
`offline_after_failures` consecutive failed polls; an `ExceptionResponse` means the device
answered but refused, which is a `device_fault`. Each change of state is logged once.

An offline device is polled less often (`next_poll`): the offline devices of a bus together
take at most `dead_share` of its time (each failed poll's measured cost, timeouts and
retries included, spaces out the next), and at least `OFFLINE_POLL_INTERVAL_S` apart, so
the devices that still answer keep their interval on a shared RS-485 line. Until it is
offline a failing device keeps its interval: detection and a flaky detector's readings are
not slowed down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from drivers.modbus import actuation
from drivers.modbus.client import BusClient, ClientFactory
from drivers.modbus.codec import Decoded, ReadBlock, decode
from drivers.modbus.errors import ExceptionResponse, ModbusFailure
from drivers.modbus.target import CommandJob, PollSink, PollTarget, RawRegisters
from rules.model import DeviceRef

__all__ = ["CommandJob", "ModbusBus", "PollSink", "PollTarget", "jitter_p99", "next_poll"]

log = logging.getLogger(__name__)

OFFLINE_POLL_INTERVAL_S = 10.0  # how often a device that stopped answering is retried
CONFIRM_POLL_INTERVAL_S = 0.5  # while a command waits for its confirmation
DEAD_SHARE = 0.10  # of a bus's time, at most, for the devices on it that do not answer


def next_poll(
    *,
    due: float,
    started: float,
    now: float,
    interval_s: float,
    offline: bool,
    failed_cost: float | None,
    offline_on_bus: int,
    confirm_by: float | None,
    dead_share: float = DEAD_SHARE,
) -> float:
    """When to poll a device next, given its poll that was due at `due`, started at
    `started` and ended at `now`. `failed_cost` is how long that poll held the bus if it
    failed (None if the device answered), `offline_on_bus` how many devices of the bus are
    offline (this one included), `confirm_by` the earliest deadline of a command waiting
    for its read-back."""
    if offline and failed_cost is not None:
        # Space its polls (start to start) so that the offline devices of the bus together
        # hold it at most `dead_share` of the time.
        interval = max(
            interval_s,
            OFFLINE_POLL_INTERVAL_S,
            failed_cost * max(1, offline_on_bus) / dead_share,
        )
        nxt = started + interval
        if confirm_by is not None:
            nxt = min(nxt, confirm_by)  # a command's verdict is not held back by the back-off
        return max(nxt, now)
    # Answering, or failing but not offline yet: detection keeps the device's own rhythm.
    interval = interval_s if confirm_by is None else min(interval_s, CONFIRM_POLL_INTERVAL_S)
    # Keep the rhythm (due + interval) unless we fell behind; never catch up in a burst.
    return max(due + interval, started + interval * 0.5, now)


class _NoSink:
    """Before `run`: nothing is polled, so nothing arrives."""

    def poll_values(self, ref: DeviceRef, values: dict[str, float]) -> None: ...
    def poll_unreachable(self, ref: DeviceRef) -> None: ...
    def poll_fault(self, ref: DeviceRef, source: str, active: bool, detail: str) -> None: ...
    def poll_command_result(self, job: CommandJob, ok: bool, detail: str) -> None: ...


_NO_SINK = _NoSink()


class ModbusBus:
    JITTER_SAMPLES = 1000

    def __init__(
        self,
        name: str,
        client_factory: ClientFactory,
        targets: Sequence[PollTarget],
        clock: Callable[[], float] = time.monotonic,
        *,
        gap_s: float = 0.0,
        dead_share: float = DEAD_SHARE,
    ) -> None:
        self.name = name
        self._client = BusClient(name, client_factory, gap_s=gap_s, clock=clock)
        self.dead_share = dead_share
        self.targets = list(targets)
        self._sink: PollSink = _NO_SINK
        self._clock = clock
        self._commands: asyncio.Queue[CommandJob] = asyncio.Queue()
        self._wake = asyncio.Event()
        self.stats = self._client.stats
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

    def last_registers(self, ref: DeviceRef) -> RawRegisters | None:
        """The raw registers (or bits) of the device's last answered poll, read-only."""
        for t in self.targets:
            if t.ref == ref:
                return t.last_registers
        return None

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
                    job = self._commands.get_nowait()
                    await actuation.execute(self._client, job, self._sink, self._clock)
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
            self._client.close()

    # --------------------------------------------------------------- polling
    async def _poll(self, t: PollTarget) -> None:
        started = self._clock()
        if len(t.jitter) < self.JITTER_SAMPLES:
            t.jitter.append(started - t.due)
        t.polls += 1
        results: dict[ReadBlock, list[int]] = {}
        failed = False
        try:
            for block in t.blocks:
                results[block] = await self._client.read(t.unit, block, t.retries)
        except ExceptionResponse as exc:
            self._refused(t, exc)
            actuation.expire(t, f"device refuses: {exc}", self._sink, self._clock)
        except ModbusFailure as exc:
            failed = True
            self._failed(t, exc)
            actuation.expire(t, f"device not answering: {exc}", self._sink, self._clock)
        else:
            t.last_registers = RawRegisters(
                self._clock(), tuple((b, tuple(v)) for b, v in results.items())
            )
            self._answered(t, decode(t.profile, results))
        now = self._clock()
        t.busy_s += now - started
        t.due = next_poll(
            due=t.due,
            started=started,
            now=now,
            interval_s=t.interval_s,
            offline=t.offline,
            # the silence owed after it (the RTU gap) is the failed poll's cost too
            failed_cost=(now - started + self._client.gap_s) if failed else None,
            offline_on_bus=sum(1 for x in self.targets if x.offline),
            confirm_by=min((j.deadline for j in t.awaiting), default=None),
            dead_share=self.dead_share,
        )

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
        actuation.check_confirmations(t, decoded, self._sink, self._clock)

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


def jitter_p99(targets: Sequence[PollTarget]) -> float:
    samples = sorted(s for t in targets for s in t.jitter[1:])  # the first is start-up spread
    if not samples:
        return 0.0
    return samples[min(len(samples) - 1, int(len(samples) * 0.99))]
