"""The supervisor's own periodic work: the rule tick, the event-loop lag watch, and the
devices' status points for the time series."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.alarms.dispatch import AlarmDispatcher
from gateway.central.observer import CentralObserver
from gateway.health.metrics import Metrics
from gateway.timeseries.device_series import DeviceSeries
from rules.engine import RuleEngine
from rules.model import Instant

log = logging.getLogger(__name__)


def rule_tick(
    now: Instant,
    engine: RuleEngine,
    dispatcher: AlarmDispatcher,
    central: CentralObserver,
    metrics: Metrics,
) -> None:
    """The engine's deadlines (offline, valve confirmation, escalation of levels) and
    central mode's `edge_offline`, on `now.mono`; what they raise is stamped `now.wall`."""
    try:
        dispatcher.dispatch(engine.tick(now), now.wall)
        central.tick(now)
    except Exception:
        metrics.internal_errors.labels("tick").inc()
        log.exception("internal error in rule tick")


async def every(interval_s: float, fn: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        fn()


async def watch_loop_lag(observe: Callable[[float], None], every_s: float = 0.05) -> None:
    """How late the loop runs a timer: what any message or request waited for a turn."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        observe(max(0.0, loop.time() - due))


async def status_points(series: DeviceSeries, every_s: float = 60.0) -> None:
    """Every device's status once a minute, yielding between chunks."""
    while True:
        for _ in series.snapshot():
            await asyncio.sleep(0)
        await asyncio.sleep(every_s)
