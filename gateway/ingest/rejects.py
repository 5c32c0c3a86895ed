"""Rejected input: counted by reason (metrics and health), exactly; logged within bounds.

Every rejection is counted (`gateway_rejected_total{reason}`, `/api/health` -> `rejected`).
The log is bounded, since whoever can publish chooses how many rejections there are and
under which topics:

- A configured device's rejection is logged once a minute per device and reason, its next
  line telling how many more there were (an integrator needs to see which device sends what).
- Messages that name no configured device (`unknown_device`, `unknown_topic`,
  `unknown_gateway`) share one line a minute per reason: the first one as it is, then
  "N messages rejected as unknown_device in the last 60 s, e.g. <topic>: <detail>". So do
  a configured device's rejections once the table of keys is full. Presences
  (`prefix/gateways/<id>`, any id) count as one device.
- Per-device lines together take at most `MAX_DEVICE_LINES` a minute; what that holds back
  is counted by reason and said in one summary line after the minute.

So the reject log is at most `MAX_DEVICE_LINES` + one line per reason + one summary a minute,
however many messages come, and a held-back rejection costs a few dictionary operations and
no formatting. Topics and details are shortened and escaped before they are written.
"""

from __future__ import annotations

import logging

from drivers.codec import RejectReason
from gateway.health.metrics import Metrics
from gateway.health.ratelimit import LineBudget, OncePerInterval

log = logging.getLogger("gateway.rejected")

INTERVAL_S = 60.0
MAX_DEVICE_LINES = 100  # per INTERVAL_S, all devices together
MAX_DEVICE_KEYS = 10_000  # (device, reason) pairs remembered
SHOWN_CHARS = 200  # of a topic or detail in a line

# Reasons that say the message belongs to no configured device: any number of made-up ids.
NO_DEVICE = frozenset(
    {RejectReason.UNKNOWN_DEVICE, RejectReason.UNKNOWN_TOPIC, RejectReason.UNKNOWN_GATEWAY}
)
_CHANNELS = ("/telemetry", "/event", "/status", "/cmd/ack")


class Rejects:
    def __init__(
        self,
        metrics: Metrics,
        *,
        max_device_lines: int = MAX_DEVICE_LINES,
        max_device_keys: int = MAX_DEVICE_KEYS,
    ) -> None:
        self._metrics = metrics
        self.by_reason: dict[str, int] = {}
        self._per_device = OncePerInterval(INTERVAL_S, max_device_keys)
        self._per_reason = OncePerInterval(INTERVAL_S, len(RejectReason))
        self._budget = LineBudget(max_device_lines, INTERVAL_S)

    def reject(self, now: float, topic: str, reason: RejectReason, detail: str) -> None:
        """`now` is monotonic: it only spaces the log lines (a clock step must not silence
        a device's rejects for the length of the step)."""
        self._metrics.rejected.labels(reason.value).inc()
        self.by_reason[reason.value] = self.by_reason.get(reason.value, 0) + 1
        self._report_held_back(now)
        if reason not in NO_DEVICE:
            key = (_device_part(topic), reason)
            if self._per_device.has_room(now, key):
                self._device_line(now, key, topic, reason, detail)
                return
        self._shared_line(now, topic, reason, detail)

    def _device_line(
        self, now: float, key: object, topic: str, reason: RejectReason, detail: str
    ) -> None:
        due = self._per_device.due(now, key)
        if due is None:
            return
        if not self._budget.take(now):
            self._budget.hold(reason.value)
            return
        self._per_device.written(now, key)
        if due.held:
            log.warning(
                "rejected %s: %s: %s (and %d more like it in the last %.0f s)",
                _shown(topic),
                reason.value,
                _shown(detail),
                due.held,
                due.elapsed_s,
            )
        else:
            log.warning("rejected %s: %s: %s", _shown(topic), reason.value, _shown(detail))

    def _shared_line(self, now: float, topic: str, reason: RejectReason, detail: str) -> None:
        due = self._per_reason.due(now, reason)
        if due is None:
            return
        self._per_reason.written(now, reason)
        if due.held:
            log.warning(
                "%d messages rejected as %s in the last %.0f s, e.g. %s: %s",
                due.held + 1,
                reason.value,
                due.elapsed_s,
                _shown(topic),
                _shown(detail),
            )
        else:
            log.warning("rejected %s: %s: %s", _shown(topic), reason.value, _shown(detail))

    def _report_held_back(self, now: float) -> None:
        held = self._budget.report(now)
        if held is None:
            return
        by_reason = ", ".join(f"{r} {n}" for r, n in sorted(held.by_label.items()))
        log.warning(
            "%d rejections not logged in the last %.0f s (at most %d device lines a minute): "
            "%s; all are counted in gateway_rejected_total",
            held.count,
            held.elapsed_s,
            self._budget.max_lines,
            by_reason,
        )


def _device_part(topic: str) -> str:
    """`prefix/site/device/telemetry` -> `prefix/site/device` (one key for a device's
    channels); `prefix/gateways/<any id>` -> `prefix/gateways` (presences name gateways that
    anyone can make up); a topic of no known channel (`modbus/site/device`) is its own key."""
    head = topic.rpartition("/")[0]
    if head.endswith("/gateways"):
        return head
    for channel in _CHANNELS:
        if topic.endswith(channel):
            return topic[: -len(channel)]
    return topic


def _shown(text: str) -> str:
    """At most SHOWN_CHARS of untrusted text, with control characters escaped (a topic must
    not be able to write a log line of its own)."""
    if len(text) > SHOWN_CHARS:
        text = f"{text[:SHOWN_CHARS]}... ({len(text)} chars)"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text
