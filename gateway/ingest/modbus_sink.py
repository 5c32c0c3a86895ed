"""`ModbusSink`: where the Modbus poller's results enter the alarm path (`PollSink`).

Polled values are checked like telemetry quantities, then go to the rule engine, the live
feed and the time series; an unreachable device is an availability change, a status bit or
exception response a fault report, a command's read-back a command result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from drivers import codec
from drivers.modbus.target import CommandJob
from gateway.ingest.series import IngestDeps
from rules.model import Availability, DeviceRef, FaultReport, Reading, Reason

log = logging.getLogger(__name__)


class ModbusSink:
    def __init__(self, deps: IngestDeps) -> None:
        self._inventory = deps.inventory
        self._engine = deps.engine
        self._dispatcher = deps.dispatcher
        self._authority = deps.authority
        self._live = deps.live
        self._rejects = deps.rejects
        self._metrics = deps.metrics
        self._clocks = deps.clocks
        self._series = deps.series

    def poll_values(self, ref: DeviceRef, values: dict[str, float]) -> None:
        now = self._clocks.now()
        try:
            good: dict[str, float] = {}
            for name, value in values.items():
                problem = codec.check_quantity(name, value)
                if problem is None:
                    good[name] = float(value)
                else:
                    self._rejects.reject(
                        now.mono, f"modbus/{ref}", problem.reason, f"{name}: {problem.detail}"
                    )
            if not good:
                return
            reading = Reading(ref, good, now.wall)
            outcome = self._engine.on_reading(reading, now)
            self._live.device_changed(ref)
            self._to_series(reading)
            self._metrics.messages.inc("modbus")
            self._dispatcher.dispatch(outcome, now.wall)
        except Exception:
            self._metrics.internal_errors.labels("modbus").inc()
            log.exception("internal error handling a poll of %s", ref)

    def poll_unreachable(self, ref: DeviceRef) -> None:
        now = self._clocks.now()
        av = Availability(ref, online=False, reason=Reason.POLL_FAILED)
        self._guarded(
            ref, lambda: self._dispatcher.dispatch(self._engine.on_availability(av, now), now.wall)
        )

    def poll_fault(self, ref: DeviceRef, source: str, active: bool, detail: str) -> None:
        now = self._clocks.now()
        if active:
            reason = (
                Reason.EXCEPTION_RESPONSE if source == "exception_response" else Reason.STATUS_BIT
            )
        else:
            reason = Reason.FAULT_CLEARED
        report = FaultReport(ref, source, active, reason)
        self._guarded(
            ref, lambda: self._dispatcher.dispatch(self._engine.on_fault(report, now), now.wall)
        )

    def poll_command_result(self, job: CommandJob, ok: bool, detail: str) -> None:
        now = self._clocks.now()
        ref = job.target.ref
        self._guarded(
            ref, lambda: self._dispatcher.command_result(job.command_id, ref, ok, detail, now)
        )

    def _guarded(self, ref: DeviceRef, act: Callable[[], None]) -> None:
        try:
            act()
            self._live.device_changed(ref)
        except Exception:
            self._metrics.internal_errors.labels("modbus").inc()
            log.exception("internal error handling %s", ref)

    def _to_series(self, reading: Reading) -> None:
        installed = self._inventory.get(reading.ref)
        if (
            self._series is not None
            and installed is not None
            and self._authority.decides(reading.ref.site)
        ):
            self._series.reading(reading, installed.type.value)
