"""Hostile MQTT input while real readings flow (`bench/fuzz.py`, run small here; `make fuzz`
sends 100,000): the gateway stays up and answers, every real reading is processed once, and
the rejections are counted by reason."""

from __future__ import annotations

from collections.abc import Callable


def test_hostile_messages_leave_real_readings_and_health_intact(
    run_bench: Callable[..., str],
) -> None:
    out = run_bench("fuzz.py", "--messages", "5000", "--seed", "7", timeout=240)
    assert "FAIL" not in out
    real = next(line for line in out.splitlines() if line.startswith("real readings:"))
    assert "0 missing, 0 doubled" in real, real
    rejected = next(line for line in out.splitlines() if line.startswith("rejected by reason:"))
    counts = dict(part.rsplit(" ", 1) for part in rejected.split(": ", 1)[1].split(", "))
    # each kind of garbage sent lands in its own reason
    reasons = "malformed_json wrong_type not_finite out_of_range oversize unknown_device"
    for reason in (reasons + " unknown_quantity unknown_event unknown_gateway").split():
        assert int(counts.get(reason, 0)) > 0, (reason, rejected)
    assert "health at the end: ok, internal errors 0" in out
