"""`Clocks`: the gateway's two clocks, injectable so that tests can step the wall clock.

Monotonic time runs every deadline, delay and freshness window (rule engine, edge presence,
notification escalation); wall time stamps what is shown and stored (raised_at, timeline,
last seen, commands) and places calendar times (maintenance windows, the daily report).
The shell reads both once per message or tick (`now`) and passes the `Instant` down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rules.model import Instant


@dataclass(frozen=True, slots=True)
class Clocks:
    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic

    def now(self) -> Instant:
        return Instant(self.mono(), self.wall())
