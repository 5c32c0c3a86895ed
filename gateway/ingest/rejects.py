"""Rejected input: counted by reason (metrics and health), logged once a minute per device."""

from __future__ import annotations

import logging

from drivers.codec import RejectReason
from gateway.health.metrics import Metrics
from gateway.health.ratelimit import OncePerInterval


class Rejects:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._log = OncePerInterval(logging.getLogger("gateway.rejected"))
        self.by_reason: dict[str, int] = {}

    def reject(self, now: float, topic: str, reason: RejectReason, detail: str) -> None:
        """`now` is monotonic: it only spaces the log lines (a clock step must not silence
        a device's rejects for the length of the step)."""
        self._metrics.rejected.labels(reason.value).inc()
        self.by_reason[reason.value] = self.by_reason.get(reason.value, 0) + 1
        # Key on the device part of the topic so that one noisy device logs once a minute.
        self._log.warn(
            now,
            (topic.rsplit("/", 1)[0], reason.value),
            "rejected %s: %s: %s",
            topic,
            reason.value,
            detail,
        )
