"""Log a repeating problem once per key per interval, then how often it repeated."""

from __future__ import annotations

import logging
from dataclasses import dataclass


@dataclass(slots=True)
class _Seen:
    logged_at: float
    suppressed: int = 0


class OncePerInterval:
    def __init__(
        self, logger: logging.Logger, interval_s: float = 60.0, max_keys: int = 10_000
    ) -> None:
        self._log = logger
        self._interval = interval_s
        self._max_keys = max_keys
        self._seen: dict[tuple[str, str], _Seen] = {}

    def warn(self, now: float, key: tuple[str, str], message: str, *args: object) -> None:
        seen = self._seen.get(key)
        if seen is not None and now - seen.logged_at < self._interval:
            seen.suppressed += 1
            return
        suppressed = seen.suppressed if seen is not None else 0
        if len(self._seen) >= self._max_keys and key not in self._seen:
            self._seen.clear()  # a flood of distinct keys: forget, rather than grow unbounded
        self._seen[key] = _Seen(now)
        if suppressed:
            self._log.warning(
                message + " (and %d more like it in the last %.0fs)",
                *args,
                suppressed,
                self._interval,
            )
        else:
            self._log.warning(message, *args)
