"""`Tasks`: every long-running task of the gateway, named, in one TaskGroup.

A supervised task that dies of an unexpected error is restarted, loudly, with backoff (and
counted: health turns degraded); shutdown cancels tasks one by one, in the order the
supervisor chooses, each with a grace period, so one stuck library cannot keep the process
alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)


class Tasks:
    def __init__(self, on_failure: Callable[[str], None]) -> None:
        self._on_failure = on_failure
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self.restarts: dict[str, int] = {}

    @property
    def running(self) -> bool:
        return self._tg is not None

    async def open(self) -> None:
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg

    def start(self, name: str, fn: Callable[[], Awaitable[None]], supervised: bool = True) -> None:
        assert self._tg is not None
        coro = self._supervise(name, fn) if supervised else fn()
        self._tasks[name] = self._tg.create_task(coro, name=name)  # type: ignore[arg-type]

    async def join(self, name: str) -> None:
        """Wait for a task that ends by itself (the store writer, once told to stop)."""
        task = self._tasks.pop(name, None)
        if task is not None:
            await task

    async def cancel(self, name: str, grace_s: float = 10.0) -> None:
        task = self._tasks.pop(name, None)
        if task is None:
            return
        task.cancel()
        # A library may swallow the cancel (3.11's wait_for race); shutdown must still end.
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            log.error(
                "task %s did not stop within %.0fs of being cancelled; leaving it", name, grace_s
            )
            return
        with contextlib.suppress(asyncio.CancelledError):
            task.result()

    async def close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancel whatever is left and leave the TaskGroup."""
        tg = self._tg
        if tg is None:
            return
        try:
            for task in self._tasks.values():
                task.cancel()
            await tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tg = None

    async def _supervise(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        delay = 0.5
        while True:
            try:
                await fn()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self._on_failure(name)
                log.exception("task %s failed; restarting in %.1fs", name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
