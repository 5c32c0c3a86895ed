"""Retry with exponential backoff: the one implementation (tenacity), used by every channel
send of the notification worker and by the daily report's build and mail.

What is *not* here: the escalation policy's later steps, reminders and channel fallback.
Those are data (`gateway.notify.policy`), persisted and visible on the alarm timeline; this
is only "the same thing again, a little later, because it may get through".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

T = TypeVar("T")


async def with_backoff(
    attempt: Callable[[int], Awaitable[T]],
    *,
    again: Callable[[T], bool],
    attempts: int,
    backoff_s: float,
    max_wait_s: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`attempt(1)`, `attempt(2)`, ... while `again(result)` holds, at most `attempts` calls,
    waiting `backoff_s`, twice that, four times that ... (at most `max_wait_s`) in between.

    Returns the last result, whether or not `again` still holds for it: the caller decides
    what a failure means. An exception from `attempt` is not retried; it propagates (an
    attempt that can fail in a way worth retrying says so in its result).
    """
    number = 0

    async def once() -> T:
        nonlocal number
        number += 1
        return await attempt(number)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=(
            wait_exponential(multiplier=backoff_s)
            if max_wait_s is None
            else wait_exponential(multiplier=backoff_s, max=max_wait_s)
        ),
        retry=retry_if_result(again),
        retry_error_callback=_last_result,
        sleep=sleep,
    )
    result: T = await retrying(once)
    return result


def _last_result(state: RetryCallState) -> object:
    """Out of attempts: the last result, instead of tenacity's `RetryError`."""
    assert state.outcome is not None
    return state.outcome.result()
