"""`Gateway`: the one supervisor that owns every long-running task.

    async with Gateway(config) as gw:
        ...   # gw.router, gw.actions, gw.health(), gw.metrics

On entry: open the store, reload open alarms, re-seed the rule engine (which re-asserts
the close of any valve whose gas alarm is still open), then start the tasks in one
TaskGroup, each named. On exit, in order: let queued commands leave, disconnect from the
broker (messages not yet taken stay queued there, in our persistent session), commit
everything accepted, close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import orjson

from drivers.codec import TopicParser
from drivers.modbus.link import ModbusLink
from drivers.mqtt import Delivery, LinkHealth, MqttLink, MqttSettings, Presence
from drivers.mqtt.catchup import CatchUp
from gateway.actuate.actuator import Actuator
from gateway.alarms.actions import AlarmActions
from gateway.alarms.book import Alarm, AlarmBook
from gateway.alarms.dispatch import AlarmDispatcher
from gateway.alarms.event import AlarmContext, AlarmEvent
from gateway.alarms.fanout import AlarmFanout
from gateway.alarms.store import AlarmStore
from gateway.alarms.wire import alarm_view
from gateway.central.edges import edge_json, presence_message
from gateway.central.observer import (
    Authority,
    CentralObserver,
    control_subscriptions,
    observed_sites,
)
from gateway.config.clockface import Clockface
from gateway.config.inventory import Inventory
from gateway.config.ruleset import build_rules
from gateway.config.schema import GatewayConfig
from gateway.health.metrics import Metrics
from gateway.ingest.modbus_plan import any_modbus, modbus_plan
from gateway.ingest.modbus_sink import ModbusSink
from gateway.ingest.rejects import Rejects
from gateway.ingest.router import MessageRouter
from gateway.live.hub import LiveHub
from gateway.notify.factory import build_notifiers
from gateway.notify.policy import Escalations, policies_from_config
from gateway.notify.worker import NotificationWorker
from gateway.report import ReportMailer
from gateway.status.wire import device_json
from gateway.timeseries.device_series import DeviceSeries
from gateway.timeseries.feed import TimeSeriesFeed
from rules.engine import RuleEngine
from rules.model import DeviceRef

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        mqtt_host: str | None = None,
        mqtt_port: int | None = None,
        clock: Callable[[], float] = time.time,
        tick_interval_s: float = TICK_INTERVAL_S,
        durable_acks: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock
        self.started_at = clock()
        self._tick_interval = tick_interval_s
        data_dir = Path(config.gateway.data_dir)
        prefix = config.topic_prefix
        mq = config.mqtt
        self.inventory = Inventory(config)
        self.clockface = Clockface(config.gateway.timezone)
        self.metrics = Metrics()
        self.engine = RuleEngine(build_rules(config), self.started_at)
        self.book = AlarmBook()
        self.authority = Authority(observed_sites(self.inventory))
        decides = self.authority.decides
        # The store calls back after each commit; the fan-out is built below, so the two
        # knots of this graph (store -> fan-out -> notifications -> store, and link ->
        # router -> link) are tied here, in the supervisor's own forwarding methods.
        self.store = AlarmStore(data_dir / "alarms.sqlite3", self._committed, self._on_durable)
        self.live = LiveHub(self.device_view)
        self.link = MqttLink(
            _mqtt_settings(config, mqtt_host, mqtt_port, durable_acks, self.authority.observed),
            handler=self._on_message,
            on_connection_change=self._on_connection_change,
            hold_acks=lambda: self.store.healthy,
            on_catchup=self._on_catchup,
        )
        plan = modbus_plan(config, config.profiles) if any_modbus(config) else []
        self.modbus = ModbusLink(plan)
        self.actuator = Actuator(
            self.link, prefix, self.store, self.clockface, modbus=self.modbus or None
        )
        self.escalations = Escalations(
            policies_from_config(config.notify),
            group_window_s=config.notify.group_window,
            observed=self.authority.observed,
        )
        self.notifications = NotificationWorker(
            config,
            self.inventory,
            self.escalations,
            {},  # notifiers need the HTTP client: made in __aenter__
            data_dir / "alarms.sqlite3",
            record=self._record,
            alarm_view=self._open_alarm_view,
            clock=clock,
        )
        self.alarm_context = AlarmContext(self.inventory, self._in_maintenance)
        self.dispatcher = AlarmDispatcher(
            engine=self.engine,
            book=self.book,
            store=self.store,
            actuator=self.actuator,
            context=self.alarm_context,
            metrics=self.metrics,
            decides=decides,
            clock=clock,
        )
        self.actions = AlarmActions(
            book=self.book,
            dispatcher=self.dispatcher,
            engine=self.engine,
            actuator=self.actuator,
            inventory=self.inventory,
            metrics=self.metrics,
            modbus=self.modbus or None,
            clock=clock,
        )
        self.central = CentralObserver(
            authority=self.authority,
            gateway_id=config.gateway.id,
            book=self.book,
            store=self.store,
            dispatcher=self.dispatcher,
            knows=self.engine.knows,
            live=self.live,
            metrics=self.metrics,
            clockface=self.clockface,
            edge_offline_after_s=config.rules.edge_offline_after,
            clock=clock,
        )
        self._http: httpx.AsyncClient | None = None
        self.timeseries: TimeSeriesFeed | None = None
        self.device_series: DeviceSeries | None = None
        if config.influx is not None:
            token = os.environ.get(config.influx.token_env) if config.influx.token_env else None
            self.timeseries = TimeSeriesFeed(
                config.influx, token, data_dir / "timeseries-outbox.sqlite3", clock
            )
            self.device_series = DeviceSeries(
                feed=self.timeseries,
                engine=self.engine,
                inventory=self.inventory,
                decides=decides,
                clock=clock,
            )
        self.fanout = AlarmFanout(
            link=self.link,
            topic_prefix=prefix,
            live=self.live,
            clockface=self.clockface,
            decides=decides,
            listeners=[self.notifications],
            series=self.device_series,
        )
        self.rejects = Rejects(self.metrics)
        self.router = MessageRouter(
            inventory=self.inventory,
            engine=self.engine,
            dispatcher=self.dispatcher,
            central=self.central,
            authority=self.authority,
            live=self.live,
            rejects=self.rejects,
            metrics=self.metrics,
            topic_prefix=prefix,
            max_payload_bytes=mq.max_payload_bytes if mq else 16_384,
            clock=clock,
            series=self.timeseries,
        )
        self.modbus_sink = ModbusSink(
            inventory=self.inventory,
            engine=self.engine,
            dispatcher=self.dispatcher,
            authority=self.authority,
            live=self.live,
            rejects=self.rejects,
            metrics=self.metrics,
            clock=clock,
            series=self.timeseries,
        )
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self.restarts: dict[str, int] = {}
        self.loop_lag_max_s = 0.0
        self._watch_metrics()

    # ---------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Gateway:
        await self.store.open()
        self._http = httpx.AsyncClient(timeout=self.config.notify.timeout)
        self.notifications.set_notifiers(build_notifiers(self.config.notify, self._http))
        await self.notifications.open()
        if self.timeseries is not None:
            await self.timeseries.open()
        alarms = await self.store.load_open()
        self.book.load(alarms)
        self.dispatcher.restore(alarms)
        if alarms:
            log.warning("reloaded %d open alarms from the store", len(alarms))
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        self._start("store-writer", self.store.run_writer, supervised=False)
        self._start("mqtt", self.link.run)
        self._start("rule-tick", self._tick_loop)
        self._start("loop-watch", self._loop_watch)
        self._start("live-flush", self.live.run_flusher)
        self._start("notifications", self.notifications.run)
        if self.timeseries is not None:
            self._start("timeseries", self.timeseries.run)
            self._start("status-points", self._status_points)
        mailer = ReportMailer.configured(
            self.config, self.store, self.inventory, self.engine.status, self.clock
        )
        if mailer is not None:
            self._start("daily-report", mailer.run)
        if self.modbus:
            self._start("modbus", lambda: self.modbus.run(self.modbus_sink))
        log.info(
            "gateway %s started: %d sites, %d devices, broker %s:%s",
            self.config.gateway.id,
            len(self.inventory.sites),
            len(self.inventory.devices),
            self.link.settings.host,
            self.link.settings.port,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg = self._tg
        if tg is None:
            return
        try:
            await self._cancel("daily-report")
            await self._cancel("loop-watch")
            await self._cancel("rule-tick")
            await self._cancel("live-flush")
            if self.modbus:
                self.modbus.stop()
            await self._cancel("modbus")
            self.link.pause()  # take no more messages; the broker keeps them for us
            await self.store.flush(timeout_s=5.0)  # commit, then acknowledge what we took
            await self.link.stop(grace_s=2.0)  # let queued commands and alarms leave
            await self._cancel("mqtt")
            self.store.stop()
            writer = self._tasks.pop("store-writer")
            await writer
            await self._cancel("notifications")  # pending steps stay in the store
            await self._cancel("status-points")
            if self.timeseries is not None:
                await self.timeseries.close()  # last points to the server, or to the outbox
                await self._cancel("timeseries")
        finally:
            try:
                for task in self._tasks.values():
                    task.cancel()
                await tg.__aexit__(exc_type, exc, tb)
            finally:
                self._tg = None
                # Always, even when interrupted: the store's thread would keep the process alive.
                await self.notifications.close()
                if self._http is not None:
                    await self._http.aclose()
                await self.store.close()
                log.info("gateway %s stopped", self.config.gateway.id)

    def _start(self, name: str, fn: Callable[[], Awaitable[None]], supervised: bool = True) -> None:
        assert self._tg is not None
        coro = self._supervise(name, fn) if supervised else fn()
        self._tasks[name] = self._tg.create_task(coro, name=name)  # type: ignore[arg-type]

    async def _supervise(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        """Restart a task that died of an unexpected error, loudly, with backoff."""
        delay = 0.5
        while True:
            try:
                await fn()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.metrics.internal_errors.labels(name).inc()
                log.exception("task %s failed; restarting in %.1fs", name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _cancel(self, name: str, grace_s: float = 10.0) -> None:
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

    async def _status_points(self, every_s: float = 60.0) -> None:
        assert self.device_series is not None
        while True:
            for _ in self.device_series.snapshot():
                await asyncio.sleep(0)
            await asyncio.sleep(every_s)

    async def _loop_watch(self, every_s: float = 0.05) -> None:
        """How late the loop runs a timer: what any message or request waited for a turn."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + every_s
            await asyncio.sleep(every_s)
            lag = max(0.0, loop.time() - due)
            self.metrics.loop_lag.observe(lag)
            self.loop_lag_max_s = max(self.loop_lag_max_s, lag)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            self.tick()

    def tick(self) -> None:
        """The engine's deadlines (offline, valve confirmation, escalation of levels) and
        central mode's `edge_offline`."""
        now = self.clock()
        try:
            self.dispatcher.dispatch(self.engine.tick(now), now)
            self.central.tick(now)
        except Exception:
            self.metrics.internal_errors.labels("tick").inc()
            log.exception("internal error in rule tick")

    # ------------------------------------------------------------------ plumbing
    def _on_message(self, topic: str, payload: bytes, delivery: Delivery) -> int | None:
        before = self.store.submitted
        self.router.on_message(topic, payload, delivery)
        # If the message changed an alarm, acknowledge it to the broker only once that
        # change is on disk: a crash in between makes the broker deliver it again.
        return self.store.submitted if self.store.submitted != before else None

    def _on_catchup(self, behind: bool) -> None:
        self.router.on_catchup(behind)

    def _on_durable(self, seq: int) -> None:
        self.link.durable(seq)

    def _committed(self, events: Sequence[AlarmEvent]) -> None:
        self.fanout.on_committed(events)

    def _record(self, alarm_id: str, action: str, detail: dict[str, Any]) -> None:
        self.dispatcher.record(alarm_id, action, detail)

    def _open_alarm_view(self, alarm_id: str) -> dict[str, Any] | None:
        alarm = self.book.get(alarm_id)
        return self.alarm_view(alarm, timeline=False) if alarm is not None else None

    def _in_maintenance(self, site: str, device: str) -> bool:
        return self.notifications.in_maintenance(site, device, self.clock()) is not None

    def _on_connection_change(self, connected: bool) -> None:
        self.metrics.mqtt_connected.set(1 if connected else 0)
        if connected and self.link.health.reconnects:
            self.metrics.mqtt_reconnects.inc()

    def _watch_metrics(self) -> None:
        m = self.metrics
        m.watch_depth("mqtt_incoming_bytes", lambda: self.link.incoming_bytes)
        m.watch_depth("mqtt_outbox", lambda: self.link.outbox_depth)
        m.watch_depth("store", lambda: self.store.depth)
        if self.timeseries is not None:
            feed = self.timeseries
            m.watch_depth("timeseries_buffer", lambda: int(feed.stats()["buffered"]))
            m.watch_depth("timeseries_outbox", lambda: int(feed.stats()["outbox_points"]))
            m.timeseries_dropped.set_function(lambda: float(feed.stats()["dropped_readings"]))
        for severity in ("critical", "major", "minor", "warning"):
            m.open_alarms.labels(severity).set_function(
                lambda s=severity: self.book.open_by_severity()[s]  # type: ignore[misc]
            )

    # --------------------------------------------------------------------- views
    def alarm_view(self, alarm: Alarm, timeline: bool = True) -> dict[str, Any]:
        return alarm_view(alarm, self.alarm_context, self.clockface, timeline)

    def device_view(self, ref: DeviceRef) -> dict[str, Any] | None:
        installed = self.inventory.get(ref)
        if installed is None:
            return None
        return device_json(installed, self.engine.status(ref), self.clockface)

    def health(self) -> dict[str, Any]:
        h: LinkHealth = self.link.health
        now = self.clock()
        internal_errors = sum(
            int(sample.value)
            for metric in self.metrics.internal_errors.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        total, online, offline, fault = self.engine.counts()
        ok = h.connected and internal_errors == 0 and self.store.healthy
        return {
            "status": "ok" if ok else "degraded",
            "gateway": self.config.gateway.id,
            "uptime_s": round(now - self.started_at, 1),
            "broker": {
                "host": self.link.settings.host,
                "port": self.link.settings.port,
                "connected": h.connected,
                "connected_since": self.clockface.iso(h.connected_since),
                "disconnected_since": self.clockface.iso(h.disconnected_since),
                "reconnects": h.reconnects,
                "failed_attempts": h.failed_attempts,
                "last_error": h.last_error,
                "received": h.received,
                "published": h.published,
                "lanes": h.lanes,
                "lane_reconnects": h.lane_reconnects,
                "oversize_dropped": self.link.oversize_dropped,
                "catchup": _catchup_json(self.link.catchup),
            },
            "queues": {
                "mqtt_incoming_bytes": self.link.incoming_bytes,
                "mqtt_outbox": self.link.outbox_depth,
                "store": self.store.depth,
                "live_subscribers": self.live.subscribers,
            },
            "store": {
                "healthy": self.store.healthy,
                "committed_batches": self.store.stats.committed_batches,
                "failed_batches": self.store.stats.failed_batches,
                "last_error": self.store.stats.last_error,
            },
            "devices": {"total": total, "online": online, "offline": offline, "fault": fault},
            "modbus": self.modbus.stats() if self.modbus else None,
            "timeseries": self.timeseries.stats() if self.timeseries else None,
            "edges": {
                site: edge_json(link, self.clockface)
                for site, link in sorted(self.central.edges.links.items())
            },
            "notifications": {
                "queue": self.notifications.depth,
                "channels": sorted(self.notifications.channel_names),
                "attempts": self.notifications.attempts,
                "failed_attempts": self.notifications.failures,
                "pending_steps": self.notifications.pending,
                "devices_in_maintenance": len(self.notifications.maintenance),
            },
            "open_alarms": self.book.open_by_severity(),
            "rejected": dict(self.rejects.by_reason),
            "internal_errors": internal_errors,
            "task_restarts": dict(self.restarts),
            "loop_lag_max_ms": round(self.loop_lag_max_s * 1000, 1),
        }


def _mqtt_settings(
    config: GatewayConfig,
    host: str | None,
    port: int | None,
    durable_acks: bool,
    observed: frozenset[str],
) -> MqttSettings:
    mq = config.mqtt
    topics = TopicParser(config.topic_prefix)
    password = os.environ.get(mq.password_env) if mq and mq.password_env else None
    return MqttSettings(
        host=host or (mq.host if mq else "127.0.0.1"),
        port=port or (mq.port if mq else 1883),
        client_id=mq.client_id if mq and mq.client_id else f"safety-gw-{config.gateway.id}",
        subscriptions=tuple(control_subscriptions(topics, observed)),
        bulk_subscriptions=tuple(topics.bulk_subscriptions),
        username=mq.username if mq else None,
        password=password,
        keepalive_s=mq.keepalive_s if mq else 30,
        manual_acks=durable_acks,
        presence=_presence(config, config.topic_prefix),
    )


def _presence(config: GatewayConfig, prefix: str) -> Presence:
    """This gateway's presence for the bureau: which sites it protects, online or not."""
    gid = config.gateway.id
    served = tuple(s.id for s in config.sites if s.served_by == "self")
    return Presence(
        TopicParser(prefix).presence_topic(gid),
        orjson.dumps(presence_message(gid, True, served)),
        orjson.dumps(presence_message(gid, False, served)),
    )


def _catchup_json(c: CatchUp) -> dict[str, Any]:
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
