"""Prometheus metrics, one registry per gateway (no module globals: tests run several)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class ChannelCounts(Collector):
    """`gateway_messages_total{channel}`, counted in a plain dict: a prometheus Counter
    takes a lock on every increment, which was a tenth of a reading's cost in a burst.
    Increments and scrapes both run on the event loop's thread."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def inc(self, channel: str, n: int = 1) -> None:
        self._counts[channel] = self._counts.get(channel, 0) + n

    def get(self, channel: str) -> int:
        return self._counts.get(channel, 0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "gateway_messages", "Messages accepted, by channel", labels=["channel"]
        )
        for channel, n in sorted(self._counts.items()):
            family.add_metric([channel], n)
        yield family


class Tally(Collector):
    """An unlabelled counter kept in a plain int, for the ingest path (see ChannelCounts)."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._doc = documentation
        self.value = 0

    def inc(self, n: int = 1) -> None:
        self.value += n

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._doc, value=self.value)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = ChannelCounts()
        r.register(self.messages)
        # Fields a device sends beside the contract's (issue 13): ignored, never a reason to drop.
        self.ignored_fields = Tally(
            "gateway_ignored_fields", "Top-level payload fields ignored (not in the contract)"
        )
        r.register(self.ignored_fields)
        self.rejected = Counter(
            "gateway_rejected_total",
            "Messages or quantities rejected, by reason",
            ["reason"],
            registry=r,
        )
        self.alarm_transitions = Counter(
            "gateway_alarm_transitions_total",
            "Alarm transitions, by alarm type and action",
            ["type", "action"],
            registry=r,
        )
        self.commands = Counter(
            "gateway_commands_total", "Device commands, by command and outcome", ["cmd", "outcome"],
            registry=r,
        )  # fmt: skip
        self.dropped = Counter(
            "gateway_queue_dropped_total",
            "Items dropped from bounded bulk queues, by queue (never alarm input)",
            ["queue"],
            registry=r,
        )
        self.store_poison = Counter(
            "gateway_store_poison_dropped_total",
            "Alarm store writes dropped because they can never succeed, by kind (alarm, command)",
            ["kind"],
            registry=r,
        )
        self.storage_failures = Counter(
            "gateway_storage_job_failures_total",
            "Daily storage jobs that failed, by job (backup, archive); the gateway goes on",
            ["job"],
            registry=r,
        )
        self.archived_rows = Counter(
            "gateway_archived_rows_total",
            "Rows moved from the alarms' database to the archive by retention",
            registry=r,
        )
        self.audit_failures = Counter(
            "gateway_audit_append_failures_total",
            "Audit entries that could not be appended (the action itself went on), by action",
            ["action"],
            registry=r,
        )
        self.internal_errors = Counter(
            "gateway_internal_errors_total",
            "Unexpected exceptions caught on a long-running path, by where",
            ["where"],
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "gateway_mqtt_connected", "1 while the broker connection is up", registry=r
        )
        self.mqtt_reconnects = Counter(
            "gateway_mqtt_reconnects_total", "Broker reconnections after an outage", registry=r
        )
        self.queue_depth = Gauge(
            "gateway_queue_depth", "Items waiting, by queue", ["queue"], registry=r
        )
        self.timeseries_dropped = Gauge(
            "gateway_timeseries_dropped_readings",
            "Reading points dropped because the time-series outbox was full (never alarms)",
            registry=r,
        )
        self.loop_lag = Histogram(
            "gateway_loop_lag_seconds",
            "How late the event loop ran a timer: time the alarm path and the API waited",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.config_reloads = Counter(
            "gateway_config_reloads_total",
            "Configuration reloads (SIGHUP, `safety-gateway reload`), by result",
            ["result"],
            registry=r,
        )
        self.open_alarms = Gauge(
            "gateway_open_alarms", "Open alarms, by severity", ["severity"], registry=r
        )

    def watch_depth(self, queue: str, read: Callable[[], int]) -> None:
        self.queue_depth.labels(queue).set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)
