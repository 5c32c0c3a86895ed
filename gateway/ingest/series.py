"""What both ways in (MQTT messages and Modbus polls) hand readings and decisions to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.alarms.dispatch import AlarmDispatcher
from gateway.central.observer import Authority
from gateway.config.clocks import Clocks
from gateway.config.inventory import Inventory
from gateway.health.metrics import Metrics
from gateway.ingest.rejects import Rejects
from gateway.live.hub import LiveHub
from rules.engine import RuleEngine
from rules.model import Reading


class ReadingSeries(Protocol):
    """The time series, which the authority for a site writes (an observer would write
    it twice)."""

    def reading(self, r: Reading, device_type: str) -> None: ...


@dataclass(frozen=True, slots=True)
class IngestDeps:
    inventory: Inventory
    engine: RuleEngine
    dispatcher: AlarmDispatcher
    authority: Authority
    live: LiveHub
    rejects: Rejects
    metrics: Metrics
    clocks: Clocks
    series: ReadingSeries | None = None
