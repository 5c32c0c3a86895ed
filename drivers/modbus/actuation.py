"""Commands to Modbus devices: the write, then confirmation by reading the device back.

A command is written at once (it goes before the next poll on its bus). It counts as done
only when a later poll reads its confirmation point at the confirmed value (a valve's `open`
at 0): meanwhile the device is polled often (`poller.CONFIRM_POLL_INTERVAL_S`), and at the
deadline a command still unconfirmed, or whose device stopped answering, is reported failed.
Every verdict goes to the `PollSink`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymodbus.exceptions import ModbusException

from drivers.modbus.client import BusClient
from drivers.modbus.codec import Decoded
from drivers.modbus.errors import EXCEPTION_NAMES, ModbusFailure
from drivers.modbus.target import CommandJob, PollSink, PollTarget


async def execute(
    client: BusClient, job: CommandJob, sink: PollSink, clock: Callable[[], float]
) -> None:
    a = job.actuation
    t = job.target
    try:
        rr: Any = await client.write(t.unit, a)
    except (ModbusFailure, ModbusException) as exc:
        sink.poll_command_result(job, False, f"write failed: {exc}")
        return
    if rr.isError():
        code = int(getattr(rr, "exception_code", 0))
        sink.poll_command_result(job, False, f"refused: {EXCEPTION_NAMES.get(code, code)}")
        return
    # Written: confirmation comes from reading the feedback point back, by polling the
    # device at once and then often until it confirms or the deadline passes.
    job.deadline = clock() + a.confirm.timeout_s
    t.awaiting.append(job)
    t.due = clock()


def check_confirmations(
    t: PollTarget, decoded: Decoded, sink: PollSink, clock: Callable[[], float]
) -> None:
    if not t.awaiting:
        return
    now = clock()
    still: list[CommandJob] = []
    for job in t.awaiting:
        value = decoded.raw.get(job.actuation.confirm.point)
        if value is not None and abs(value - job.actuation.confirm.equals) < 1e-9:
            sink.poll_command_result(job, True, f"{job.actuation.confirm.point} = {value:g}")
        elif now >= job.deadline:
            sink.poll_command_result(
                job, False, f"not confirmed: {job.actuation.confirm.point} = {value}"
            )
        else:
            still.append(job)
    t.awaiting = still


def expire(t: PollTarget, why: str, sink: PollSink, clock: Callable[[], float]) -> None:
    """A command whose device stopped answering still gets its verdict at the deadline."""
    now = clock()
    for job in [j for j in t.awaiting if now >= j.deadline]:
        sink.poll_command_result(job, False, why)
    t.awaiting = [j for j in t.awaiting if now < j.deadline]
