"""The one retry-with-backoff helper: how often it calls, how long it waits, what it returns.
The sleep is recorded, not slept."""

from __future__ import annotations

import pytest

from gateway.notify.base import SendResult
from gateway.notify.retry import with_backoff

OK = SendResult(True, False, "ok")
BUSY = SendResult(False, True, "503")
REFUSED = SendResult(False, False, "550")


class Script:
    """Answers one result per attempt, in order, and records the attempts and the waits."""

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.calls: list[int] = []
        self.waits: list[float] = []

    async def attempt(self, n: int) -> SendResult:
        self.calls.append(n)
        return self.results[n - 1]

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


async def run(script: Script, attempts: int, backoff_s: float, **kw: float) -> SendResult:
    return await with_backoff(
        script.attempt,
        again=lambda r: r.worth_retrying,
        attempts=attempts,
        backoff_s=backoff_s,
        sleep=script.sleep,
        **kw,
    )


async def test_stops_at_the_first_success() -> None:
    s = Script(BUSY, BUSY, OK, OK)
    assert await run(s, attempts=5, backoff_s=2.0) == OK
    assert s.calls == [1, 2, 3]
    assert s.waits == [2.0, 4.0]


async def test_out_of_attempts_returns_the_last_result() -> None:
    s = Script(BUSY, BUSY, BUSY, OK)
    assert await run(s, attempts=3, backoff_s=30.0) == BUSY
    assert s.calls == [1, 2, 3]
    assert s.waits == [30.0, 60.0]


async def test_a_failure_a_retry_cannot_fix_is_not_retried() -> None:
    s = Script(REFUSED, OK)
    assert await run(s, attempts=3, backoff_s=1.0) == REFUSED
    assert s.calls == [1] and s.waits == []


async def test_waits_are_capped() -> None:
    s = Script(BUSY, BUSY, BUSY, BUSY)
    await run(s, attempts=4, backoff_s=40.0, max_wait_s=60.0)
    assert s.waits == [40.0, 60.0, 60.0]


async def test_an_exception_propagates_at_once() -> None:
    calls = 0

    async def broken(n: int) -> SendResult:
        nonlocal calls
        calls += 1
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        await with_backoff(broken, again=lambda r: True, attempts=3, backoff_s=0.0)
    assert calls == 1
