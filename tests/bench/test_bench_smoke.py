"""Each benchmark, run small, so that none of them rots (the figures come from `make bench`).

Each runs in its own process, with its own servers, as `make bench` runs it; a failed check
in a benchmark (a lost or doubled reading, a reconnect, an alarm that never came) fails here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.broker, pytest.mark.tsdb, pytest.mark.process, pytest.mark.slow]

BENCH = REPO_ROOT / "bench"


def run(script: str, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def test_burst_benchmark_smoke() -> None:
    out = run("burst.py", "--smoke")
    assert "(a) mosquitto_sub" in out and "(b) bare paho" in out and "c/b" in out
    assert "FAIL" not in out


def test_scale_benchmark_smoke() -> None:
    out = run("scale.py", "--smoke")
    assert "ready in" in out and "GET /api/overview" in out
    assert "FAIL" not in out


def test_modbus_poll_benchmark_smoke() -> None:
    out = run("modbus_poll.py", "--devices", "10", "--buses", "2", "--seconds", "3")
    assert "polls per device" in out or "block reads" in out
