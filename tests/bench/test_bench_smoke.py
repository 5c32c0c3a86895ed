"""Each benchmark, run small, so that none of them rots (the figures come from `make bench`).

Each runs in its own process, with its own servers, as `make bench` runs it; a failed check
in a benchmark (a lost or doubled reading, a reconnect, an alarm that never came) fails here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = pytest.mark.slow


def test_burst_benchmark_smoke(run_bench: Callable[..., str]) -> None:
    # One QoS (1: acks, the durable path); `make bench` runs both at full size.
    out = run_bench("burst.py", "--smoke", "--qos", "1")
    assert "(a) mosquitto_sub" in out and "(b) bare paho" in out and "c/b" in out
    assert "FAIL" not in out


def test_scale_benchmark_smoke(run_bench: Callable[..., str]) -> None:
    out = run_bench("scale.py", "--smoke")
    assert "ready in" in out and "GET /api/overview" in out
    assert "FAIL" not in out


def test_modbus_poll_benchmark_smoke(run_bench: Callable[..., str]) -> None:
    out = run_bench("modbus_poll.py", "--devices", "10", "--buses", "2", "--seconds", "3")
    assert "polls per device" in out or "block reads" in out
