"""The gateway's health report (`GET /api/health`, `safety-gateway` logs): what an operator
checks first. Built from the running stages; the Prometheus metrics are `gateway.health`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drivers.mqtt import LinkHealth, MqttLink
from drivers.mqtt.catchup import CatchUp
from gateway.central.edges import edge_json
from gateway.health.metrics import Metrics

if TYPE_CHECKING:
    from gateway.app.supervisor import Gateway


def health_report(gw: Gateway) -> dict[str, Any]:
    """`GET /api/health`: degraded when the broker is down, the store failing or found
    corrupt at start (`store.recovered_from`, until a person closes its `store_failure`
    alarm), the last daily backup or archive failed
    (`storage`), any internal error was counted since start, or the last configuration
    reload was refused (`config.last_reload.errors`)."""
    h: LinkHealth = gw.link.health
    internal_errors = sum(
        int(sample.value)
        for metric in gw.metrics.internal_errors.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
    total, online, offline, fault = gw.engine.counts()
    recovery = gw.store.recovery
    # A refused reload leaves a file on disk that the next start would refuse too.
    refused = gw.last_reload is not None and not gw.last_reload.ok
    ok = (
        h.connected
        and internal_errors == 0
        and gw.store.healthy
        and not _recovery_unresolved(gw)
        and gw.housekeeping.healthy
        and not refused
        and not gw.open_failures
    )
    return {
        "status": "ok" if ok else "degraded",
        "gateway": gw.config.gateway.id,
        "uptime_s": round(gw.clocks.mono() - gw.started_mono, 1),
        # people.sqlite3 or audit.sqlite3 that could not be opened at start (why)
        "databases_unavailable": gw.open_failures,
        "config": {
            "path": str(gw.config_path) if gw.config_path is not None else None,
            "loaded_at": gw.clockface.iso(gw.loaded_at),
            "last_reload": gw.last_reload.json(gw.clockface.iso) if gw.last_reload else None,
        },
        "broker": {
            "host": gw.link.settings.host,
            "port": gw.link.settings.port,
            "connected": h.connected,
            "connected_since": gw.clockface.iso(h.connected_since),
            "disconnected_since": gw.clockface.iso(h.disconnected_since),
            "reconnects": h.reconnects,
            "failed_attempts": h.failed_attempts,
            "last_error": h.last_error,
            "received": h.received,
            "published": h.published,
            "lanes": h.lanes,
            "lane_reconnects": h.lane_reconnects,
            "oversize_dropped": gw.link.oversize_dropped,
            "catchup": catchup_json(gw.link.catchup),
        },
        "queues": {
            "mqtt_incoming_bytes": gw.link.incoming_bytes,
            "mqtt_outbox": gw.link.outbox_depth,
            "store": gw.store.depth,
            "live_subscribers": gw.live.subscribers,
        },
        "store": {
            "healthy": gw.store.healthy,
            "committed_batches": gw.store.stats.committed_batches,
            "failed_batches": gw.store.stats.failed_batches,
            "last_error": gw.store.stats.last_error,
            "poison_dropped": gw.store.stats.poison_dropped,
            "last_poison": gw.store.stats.last_poison,
            # The database found corrupt at start, kept aside: this run began on a fresh one.
            "recovered_from": recovery.moved_to if recovery else None,
            "recovery_reason": recovery.reason if recovery else None,
            "recovered_at": gw.clockface.iso(recovery.at) if recovery else None,
        },
        # The daily backup and archive: a failure shows here until a run succeeds.
        "storage": gw.housekeeping.health(gw.clockface.iso),
        "devices": {"total": total, "online": online, "offline": offline, "fault": fault},
        "modbus": gw.modbus.stats() if gw.modbus else None,
        "timeseries": gw.timeseries.stats() if gw.timeseries else None,
        "edges": {
            site: edge_json(link, gw.clockface)
            for site, link in sorted(gw.central.edges.links.items())
        },
        "notifications": {
            "queue": gw.notifications.depth,
            "channels": sorted(gw.notifications.channel_names),
            "attempts": gw.notifications.attempts,
            "failed_attempts": gw.notifications.failures,
            "pending_steps": gw.notifications.pending,
            "devices_in_maintenance": len(gw.maintenance.windows),
        },
        "open_alarms": gw.book.open_by_severity(),
        "rejected": dict(gw.rejects.by_reason),
        "internal_errors": internal_errors,
        "task_restarts": dict(gw.tasks.restarts),
        "loop_lag_max_ms": round(gw.loop_lag_max_s * 1000, 1),
    }


def catchup_json(c: CatchUp) -> dict[str, Any]:
    return {
        "active": c.active,
        "behind": c.behind,
        "catchups": c.catchups,
        "live_messages": c.live_messages,
        "backlog_messages": c.backlog_messages,
        "duplicates": c.duplicates,
        "pending": c.pending,
        "end_reason": c.end_reason,
    }


def watch_gauges(gw: Gateway) -> None:
    """Gauges read when Prometheus scrapes: queue depths, open alarms by severity."""
    m = gw.metrics
    m.watch_depth("mqtt_incoming_bytes", lambda: gw.link.incoming_bytes)
    m.watch_depth("mqtt_outbox", lambda: gw.link.outbox_depth)
    m.watch_depth("store", lambda: gw.store.depth)
    if gw.timeseries is not None:
        feed = gw.timeseries
        m.watch_depth("timeseries_buffer", lambda: int(feed.stats()["buffered"]))
        m.watch_depth("timeseries_outbox", lambda: int(feed.stats()["outbox_points"]))
        m.timeseries_dropped.set_function(lambda: float(feed.stats()["dropped_readings"]))
    for severity in ("critical", "major", "minor", "warning"):
        m.open_alarms.labels(severity).set_function(
            lambda s=severity: gw.book.open_by_severity()[s]  # type: ignore[misc]
        )


def connection_changed(metrics: Metrics, link: MqttLink, connected: bool) -> None:
    metrics.mqtt_connected.set(1 if connected else 0)
    if connected and link.health.reconnects:
        metrics.mqtt_reconnects.inc()


def _recovery_unresolved(gw: Gateway) -> bool:
    """A database was found corrupt at start and a person has not closed its `store_failure`
    alarm yet. A bureau that decides no site raises none: degraded until its next start."""
    if gw.store.recovery is None:
        return False
    keys = gw.store_failure_keys
    return not keys or any(gw.book.find(key) is not None for key in keys)
