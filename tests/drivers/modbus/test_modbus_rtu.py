"""Modbus RTU over a real serial path: the gateway's bus poller on one end of a `socat` pty
pair, the simulator's devices behind pymodbus's RTU server on another, and a relay between
them that logs every frame and flips a byte of an answer on demand.

One line, three devices, built from the configuration as the gateway builds them (one
walk-through, to keep the suite's time): polling, a command with read-back, a CRC-corrupted
answer counted and retried, the inter-frame gap, and a device that stops answering, goes
offline and takes at most its share of the line while the two others keep their interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drivers.modbus import poller
from drivers.modbus.client import frame_gap_s
from drivers.modbus.profile import builtin_profiles
from drivers.modbus.target import CommandJob
from gateway.app.modbus_buses import ModbusBuses
from gateway.config.loading import parse_config
from rules.model import CommandKind, DeviceRef
from simulator.modbus_device import DeviceMode, SimModbusDevice
from tests.conftest import until
from tests.support.config import base
from tests.support.serial_bus import Frame, SerialBus

EFM, GAC, VALVE = 1, 2, 3
BAUD = 9600
TIMEOUT_S = 0.1
LIVE_INTERVAL_S = 0.08  # below the timeout: after a dead poll the live ones are due at once


def ref(device: str) -> DeviceRef:
    return DeviceRef("site-a", device)


@dataclass
class Recorder:
    """A `PollSink` that keeps what the poller reported."""

    values: dict[DeviceRef, dict[str, float]] = field(default_factory=dict)
    unreachable: list[DeviceRef] = field(default_factory=list)
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def poll_values(self, r: DeviceRef, values: dict[str, float]) -> None:
        self.values.setdefault(r, {}).update(values)

    def poll_unreachable(self, r: DeviceRef) -> None:
        self.unreachable.append(r)

    def poll_fault(self, r: DeviceRef, source: str, active: bool, detail: str) -> None: ...

    def poll_command_result(self, job: CommandJob, ok: bool, detail: str) -> None:
        self.results.append((job.command_id, ok, detail))


def serial_config(port: str) -> Any:
    def device(id_: str, type_: str, unit: int, profile: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": id_,
            "type": type_,
            "location": "配电室",
            "transport": "modbus",
            "modbus": {
                "serial": port,
                "baudrate": BAUD,
                "unit": unit,
                "profile": profile,
                "timeout": f"{TIMEOUT_S} s",
                "offline_after_failures": 2,
                **extra,
            },
            "poll_interval_s": LIVE_INTERVAL_S,
        }

    data = copy.deepcopy(base())
    data["sites"][0]["devices"] = [
        device("efm-1", "electrical_fire_monitor", EFM, "acrel_arcm300t_z", retries=1),
        # retries 0: its failed polls cost one timeout each, so the share shows in seconds
        device("gac-1", "gas_alarm_controller", GAC, "igd_toc_635_plus", retries=0)
        | {"channels": {1: "gas-1"}},
        {"id": "gas-1", "type": "gas_detector", "location": "厨房", "transport": "channel"},
        device("valve-1", "gas_valve", VALVE, "rotork_iq_pro", retries=1),
    ]
    return parse_config(data)


@pytest.fixture
async def serial_bus(tmp_path: Path) -> AsyncIterator[tuple[SerialBus, ModbusBuses, Recorder]]:
    """The line with its three devices, and the gateway's bus polling it into a recorder."""
    profiles = builtin_profiles()
    efm = SimModbusDevice(profiles["acrel_arcm300t_z"], EFM)
    gac = SimModbusDevice(profiles["igd_toc_635_plus"], GAC)
    valve = SimModbusDevice(profiles["rotork_iq_pro"], VALVE, travel_s=0.2)
    efm.set_quantity("residual_ma", 35)
    gac.set_quantity("lel", 0.0, channel=1)
    valve.set_quantity("open", 1)
    async with SerialBus(tmp_path, [efm, gac, valve], baudrate=BAUD) as bus:
        buses = ModbusBuses(serial_config(bus.port))  # as the gateway builds its buses
        (link,) = buses.links.values()
        sink = Recorder()
        task = asyncio.create_task(link.run(sink))
        try:
            yield bus, buses, sink
        finally:
            link.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def dead_share(frames: list[Frame], unit: int, held_s: float) -> float:
    """The share of the line's time the unit held, from the wire: each of its requests
    holds the line until the master's next request to another unit, or for `held_s` (the
    timeout and the gap) if the master sat idle longer; from its first request to its last
    (whose own cost lies beyond the span)."""
    spans: list[float] = []
    mine = [i for i, f in enumerate(frames) if f.from_master and f.unit == unit]
    for i in mine[:-1]:
        nxt = next(f for f in frames[i + 1 :] if f.from_master and f.unit != unit)
        spans.append(min(nxt.at - frames[i].at, held_s))
    return sum(spans) / (frames[mine[-1]].at - frames[mine[0]].at)


@pytest.fixture(autouse=True)
def short_offline_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    # The 10 s floor between an offline device's polls would hide the share in a short test.
    monkeypatch.setattr(poller, "OFFLINE_POLL_INTERVAL_S", 0.3)


async def test_rtu_line_end_to_end(
    serial_bus: tuple[SerialBus, ModbusBuses, Recorder],
) -> None:
    bus, buses, sink = serial_bus
    # Polling: every device's values arrive over the serial line.
    await until(
        lambda: (
            sink.values.get(ref("efm-1"), {}).get("residual_ma") == 35
            and ref("gas-1") in sink.values
            and sink.values.get(ref("valve-1"), {}).get("open") == 1
        ),
        what="first polls over RTU",
    )
    raw = buses.last_registers(ref("efm-1"))
    assert raw is not None and any(35 in regs for _, regs in raw.blocks)

    # A command with read-back: written, then confirmed by polling the valve's limit.
    assert buses.submit(ref("valve-1"), CommandKind.CLOSE_VALVE, "c-1")
    await until(lambda: sink.results, what="the close_valve verdict")
    assert sink.results == [("c-1", True, "valve_open = 0")]
    assert bus.devices[VALVE].value("valve_open") == 0

    # A CRC-corrupted answer: counted, retried, and the device stays online.
    (bus_,) = buses.buses
    failed_before = bus_.stats.failed_reads
    bus.devices[EFM].set_quantity("residual_ma", 77)
    bus.relay.corrupt_next_answers(EFM)
    await until(lambda: sink.values[ref("efm-1")].get("residual_ma") == 77, what="retried read")
    assert bus.relay.corrupted == 1
    assert bus_.stats.crc_errors == 1
    assert bus_.stats.failed_reads == failed_before + 1
    assert buses.stats()["crc_errors"] == 1  # as /api/health shows it
    assert not any(t.offline for t in bus_.targets) and not sink.unreachable

    # The inter-frame gap: no request followed an answer sooner than 3.5 characters.
    gap = frame_gap_s(BAUD)
    assert gap == pytest.approx(3.5 * 11 / 9600)
    after_answer = [
        b.at - a.at
        for a, b in zip(bus.relay.frames, bus.relay.frames[1:], strict=False)
        if not a.from_master and b.from_master
    ]
    assert len(after_answer) > 20 and min(after_answer) >= gap

    # A device that stops answering goes offline, then holds at most 10 % of the line.
    bus.devices[GAC].mode = DeviceMode.SILENT
    await until(lambda: ref("gac-1") in sink.unreachable, what="gac-1 offline")
    since = bus.relay.frames[-1].at
    live = [t for t in bus_.targets if t.unit in (EFM, VALVE)]
    polls_before = [t.polls for t in live]
    await until(lambda: len(bus.relay.requests(GAC, since)) >= 5, what="5 dead polls")
    span = time.monotonic() - since
    frames = [f for f in bus.relay.frames if f.at >= since]
    share = dead_share(frames, GAC, held_s=TIMEOUT_S + gap)
    assert share <= 0.10, f"the dead device held {share:.1%} of the line"
    assert share > 0.05, f"{share:.1%}: is it still tried?"
    for t, before in zip(live, polls_before, strict=True):  # the others keep their pace
        assert t.polls - before >= 0.8 * span / LIVE_INTERVAL_S, (t.ref, t.polls - before)

    # It answers again: back online at its next (backed-off) poll.
    bus.devices[GAC].mode = DeviceMode.NORMAL
    await until(lambda: not any(t.offline for t in bus_.targets), what="gac-1 back")
