"""The timing decisions of a serial bus, with a fake clock: the RTU inter-frame gap and the
share of the line left to devices that do not answer (`poller.next_poll`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from drivers.modbus.client import frame_gap_s, gap_wait
from drivers.modbus.poller import CONFIRM_POLL_INTERVAL_S, OFFLINE_POLL_INTERVAL_S, next_poll


def test_the_gap_is_three_and_a_half_characters_and_fixed_above_19200_baud() -> None:
    assert frame_gap_s(9600) == pytest.approx(3.5 * 11 / 9600)  # 4.01 ms
    assert frame_gap_s(2400) == pytest.approx(0.016042, abs=1e-6)
    assert frame_gap_s(19200) == pytest.approx(0.0020052, abs=1e-6)
    assert frame_gap_s(38400) == frame_gap_s(115200) == 0.00175


def test_the_next_request_waits_out_the_gap() -> None:
    gap = frame_gap_s(9600)
    assert gap_wait(now=5.0, last_exchange_end=None, gap_s=gap) == 0.0  # first request
    assert gap_wait(now=5.0, last_exchange_end=5.0, gap_s=gap) == pytest.approx(gap)
    assert gap_wait(now=5.003, last_exchange_end=5.0, gap_s=gap) == pytest.approx(gap - 0.003)
    assert gap_wait(now=5.1, last_exchange_end=5.0, gap_s=gap) == 0.0
    assert gap_wait(now=5.0, last_exchange_end=5.0, gap_s=0.0) == 0.0  # TCP


def poll_after(**kw: object) -> float:
    args: dict[str, object] = {
        "due": 100.0,
        "started": 100.0,
        "now": 100.02,
        "interval_s": 2.0,
        "offline": False,
        "failed_cost": None,
        "offline_on_bus": 0,
        "confirm_by": None,
    }
    args.update(kw)
    return next_poll(**args)  # type: ignore[arg-type]


def test_answering_and_merely_failing_devices_keep_their_interval() -> None:
    assert poll_after() == 102.0
    assert poll_after(started=100.5, now=100.6) == 102.0  # late start: keeps the rhythm
    assert poll_after(started=110.0, now=110.1) == 111.0  # far behind: no burst to catch up
    # Failing but not offline yet: detection is not slowed down.
    assert poll_after(failed_cost=2.0, now=102.0) == 102.0
    # A command waiting for its read-back: polled often.
    assert poll_after(confirm_by=130.0) == 100.0 + CONFIRM_POLL_INTERVAL_S


def test_an_offline_device_is_spaced_to_its_share_of_the_bus() -> None:
    # 1 s timeout x (1 retry + 1) and a backoff: 2.05 s on the bus per failed poll.
    assert poll_after(offline=True, failed_cost=2.05, offline_on_bus=1, now=102.05) == (
        pytest.approx(100.0 + 20.5)
    )
    # Two offline on one bus share the 10 %.
    assert poll_after(
        offline=True, failed_cost=2.05, offline_on_bus=2, now=102.05
    ) == pytest.approx(100.0 + 41.0)
    assert poll_after(
        offline=True, failed_cost=2.05, offline_on_bus=1, now=102.05, dead_share=0.25
    ) == pytest.approx(100.0 + OFFLINE_POLL_INTERVAL_S)  # the floor
    # A cheap failure (the port is gone) still waits the floor, not a hammering retry.
    assert poll_after(offline=True, failed_cost=0.001, offline_on_bus=1) == (
        100.0 + OFFLINE_POLL_INTERVAL_S
    )
    # A command's deadline is not held back: its verdict needs a poll by then.
    assert poll_after(
        offline=True, failed_cost=2.05, offline_on_bus=1, now=102.05, confirm_by=104.0
    ) == pytest.approx(104.0)


@dataclass
class Sim:
    name: str
    interval_s: float
    cost_s: float  # bus time per poll
    offline: bool
    due: float = 0.0
    polls: int = 0
    busy_s: float = 0.0
    starts: list[float] = field(default_factory=list)


def test_one_simulated_hour_two_live_and_one_dead_on_a_line() -> None:
    """The poller's loop, with a fake clock: the dead device holds at most 10 % of the line,
    where the 10 s floor alone gave it 2.05 / 12.05 = 17 %; the live ones keep 1 s but for
    the stalls."""
    devices = [
        Sim("efm", 1.0, 0.03, False),
        Sim("valve", 1.0, 0.02, False, due=0.5),
        Sim("dead", 1.0, 2.05, True, due=0.2),
    ]
    now = 0.0
    while now < 3600.0:
        d = min(devices, key=lambda x: x.due)
        now = max(now, d.due)
        started = now
        now += d.cost_s
        d.polls += 1
        d.busy_s += d.cost_s
        d.starts.append(started)
        d.due = next_poll(
            due=d.due,
            started=started,
            now=now,
            interval_s=d.interval_s,
            offline=d.offline,
            failed_cost=d.cost_s if d.offline else None,
            offline_on_bus=1,
            confirm_by=None,
        )
    dead = devices[2]
    # From its first poll's start to its last's (whose cost lies beyond the span).
    share = (dead.busy_s - dead.cost_s) / (dead.starts[-1] - dead.starts[0])
    assert 0.09 < share <= 0.10 + 1e-9  # and not starved: it is still tried
    for live in devices[:2]:  # a stall of the line delays them; they lose no more than that
        assert live.polls >= 3600 * (1 - 0.10)
