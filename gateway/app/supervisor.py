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
import logging
import signal
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from drivers.modbus.link import ModbusLink
from drivers.mqtt import Delivery, MqttLink
from gateway.actuate.actuator import Actuator
from gateway.alarms.actions import AlarmActions
from gateway.alarms.book import Action, Alarm, AlarmBook
from gateway.alarms.dispatch import AlarmDispatcher
from gateway.alarms.event import AlarmContext, AlarmEvent
from gateway.alarms.fanout import AlarmFanout
from gateway.alarms.store import AlarmStore, StoreRecovery
from gateway.alarms.wire import alarm_view
from gateway.app.health import connection_changed, health_report, watch_gauges
from gateway.app.housekeeping import Housekeeping
from gateway.app.loops import every, rule_tick, status_points, watch_loop_lag
from gateway.app.modbus_buses import ModbusBuses, pending_commands
from gateway.app.records import PEOPLE_PRUNE_S, Records, reminder_sender
from gateway.app.reload import ReloadResult, reload_config
from gateway.app.settings import mqtt_settings, time_series
from gateway.app.systemd import SystemdNotifier
from gateway.app.tasks import Tasks
from gateway.audit import AuditLog
from gateway.central.observer import (
    Authority,
    CentralObserver,
    observed_sites,
)
from gateway.config.clockface import Clockface
from gateway.config.clocks import Clocks
from gateway.config.inventory import Inventory
from gateway.config.reload import ReloadPlan
from gateway.config.ruleset import build_rules
from gateway.config.schema import GatewayConfig
from gateway.duty.store import DutyStore
from gateway.hazards.store import HazardStore
from gateway.health.metrics import Metrics
from gateway.incidents.store import IncidentStore
from gateway.ingest.modbus_sink import ModbusSink
from gateway.ingest.raw import RawPayloads
from gateway.ingest.redelivery import WINDOW_S, Redeliveries
from gateway.ingest.rejects import Rejects
from gateway.ingest.router import MessageRouter
from gateway.ingest.series import IngestDeps
from gateway.live.hub import LiveHub
from gateway.notify.factory import build_notifiers
from gateway.notify.maintenance import MaintenanceWindows
from gateway.notify.policy import Escalations, policies_from_config
from gateway.notify.worker import NotificationWorker
from gateway.people.directory import People
from gateway.people.links import AckLinks
from gateway.report import ReportMailer
from gateway.status.wire import device_json
from gateway.timeseries.device_series import DeviceSeries
from gateway.trend.feed import DeviceTrends, HandOpeningTrail, ReadingsTee
from rules.engine import DeviceRules, RuleEngine
from rules.model import (
    DEFAULT_SEVERITY,
    AlarmChange,
    AlarmKey,
    AlarmType,
    ChangeKind,
    DeviceRef,
    Reason,
)

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
        monotonic: Callable[[], float] = time.monotonic,
        tick_interval_s: float = TICK_INTERVAL_S,
        durable_acks: bool = True,
        systemd: SystemdNotifier | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        # The file `run` read: SIGHUP reads it again (`gateway.app.reload`); None: no reload.
        self.config_path = config_path
        self.loaded_at = clock()
        self.last_reload: ReloadResult | None = None
        self._reload_wanted = asyncio.Event()
        self.mailer: ReportMailer | None = None  # made on start, when reports are mailed
        # systemd's watchdog, pinged from the loop (`Type=notify`); silent when not under it.
        self.systemd = systemd if systemd is not None else SystemdNotifier(None)
        # Wall time (`clock`) stamps and places calendar times; monotonic time runs every
        # deadline (see gateway.config.clocks). Both injectable: tests step the wall clock.
        self.clock = clock
        self.clocks = Clocks(clock, monotonic)
        self.started_mono = self.clocks.mono()  # uptime, unmoved by a wall-clock step
        # The `store_failure` alarms raised for a database found corrupt at start: health
        # stays degraded until a person has closed them (`gateway.app.health`).
        self.store_failure_keys: list[AlarmKey] = []
        self._tick_interval = tick_interval_s
        data_dir = Path(config.gateway.data_dir)
        prefix = config.topic_prefix
        mq = config.mqtt
        self.inventory = Inventory(config)
        self.clockface = Clockface(config.gateway.timezone)
        self.metrics = Metrics()
        self.engine = RuleEngine(build_rules(config), self.clocks.now())
        self.book = AlarmBook(repeats_kept=config.rules.timeline_repeats)
        self.authority = Authority(observed_sites(self.inventory))
        decides = self.authority.decides
        # The store calls back after each commit; the fan-out is built below, so the two
        # knots of this graph (store -> fan-out -> notifications -> store, and link ->
        # router -> link) are tied here, in the supervisor's own forwarding methods.
        self.store = AlarmStore(
            data_dir / "alarms.sqlite3",
            self._committed,
            self._on_durable,
            on_poison=lambda kind: self.metrics.store_poison.labels(kind).inc(),
        )
        # The databases beside the alarm path (gateway.app.records): people, audit, ledger.
        self.records = Records(data_dir, clock, self.clockface.zone)
        self.live = LiveHub(self.device_view)
        self.link = MqttLink(
            mqtt_settings(config, mqtt_host, mqtt_port, durable_acks, self.authority.observed),
            handler=self._on_message,
            on_connection_change=lambda up: connection_changed(self.metrics, self.link, up),
            hold_acks=lambda: self.store.healthy,
            on_catchup=self._on_catchup,
            on_duplicate=self._on_duplicate,
        )
        self.modbus = ModbusBuses(config)
        self.actuator = Actuator(self.link, prefix, self.store, self.clockface, modbus=self.modbus)
        self.escalations = Escalations(
            policies_from_config(config.notify),
            group_window_s=config.notify.group_window,
            observed=self.authority.observed,
        )
        # Made outside a running loop, which httpx allows: it connects on first use.
        self._http = httpx.AsyncClient(timeout=config.notify.timeout)
        self.maintenance = MaintenanceWindows(data_dir / "alarms.sqlite3")
        self.alarm_context = AlarmContext(
            self.inventory,
            lambda site, device: self.maintenance.active(site, device, clock()) is not None,
        )
        self.dispatcher = AlarmDispatcher(
            engine=self.engine,
            book=self.book,
            store=self.store,
            actuator=self.actuator,
            context=self.alarm_context,
            metrics=self.metrics,
            decides=decides,
            clocks=self.clocks,
        )
        notifiers = build_notifiers(config.notify, self._http)
        self.notifications = NotificationWorker(
            config,
            self.inventory,
            self.escalations,
            notifiers,
            data_dir / "alarms.sqlite3",
            self.maintenance,
            record=self.dispatcher.record,
            current=self._current_alarm,
            clocks=self.clocks,
            links=self.records.links,
            on_duty=self.records.oncall.recipients,
        )
        self.reminders = reminder_sender(config, self.inventory, self.records, notifiers, clock)
        self.actions = AlarmActions(
            book=self.book,
            dispatcher=self.dispatcher,
            engine=self.engine,
            actuator=self.actuator,
            inventory=self.inventory,
            metrics=self.metrics,
            modbus=self.modbus,
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
            clocks=self.clocks,
        )
        self.timeseries = time_series(config, data_dir, clock)
        self.device_series = (
            DeviceSeries(self.timeseries, self.engine, self.inventory, decides, clock)
            if self.timeseries is not None
            else None
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
        self.housekeeping = Housekeeping(
            config.storage, data_dir, self.clockface.zone, self.metrics, clock=clock
        )
        ingest = self._ingest_deps(clock)
        self.redeliveries = Redeliveries(self.store)
        self.router = MessageRouter(
            ingest,
            redeliveries=self.redeliveries,
            central=self.central,
            topic_prefix=prefix,
            max_payload_bytes=mq.max_payload_bytes if mq else 16_384,
            resend_window_s=mq.resend_window if mq else 0.0,
            mappings=config.codecs,
            zone=self.clockface.zone,
            raw_payloads=self.raw_payloads,
        )
        self.modbus_sink = ModbusSink(ingest)
        self.tasks = Tasks(lambda name: self.metrics.internal_errors.labels(name).inc())
        self.loop_lag_max_s = 0.0
        watch_gauges(self)

    # ---------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Gateway:
        try:
            return await self._start()
        except BaseException as exc:
            # No __aexit__ follows a failed __aenter__: an open store's thread (a corrupt
            # alarms.sqlite3) would otherwise keep the process alive with nothing serving.
            log.error("gateway %s failed to start: %s", self.config.gateway.id, exc)
            if self.tasks.running:
                await self.__aexit__(type(exc), exc, exc.__traceback__)
            else:
                try:
                    if self.timeseries is not None:
                        await self.timeseries.close()
                finally:
                    await self._release()
            raise

    async def _start(self) -> Gateway:
        await self.store.open()
        await self.records.open(self.config)
        if self.records.people_open:
            await self.prune_people()
        http = self.config.http
        if (
            http.accounts
            and not http.tokens
            and self.records.people_open
            and (not self.people.can_sign_in())
        ):
            # Alarms and shut-off run regardless; only the API waits for a first account.
            log.warning(
                "http.accounts is on but nobody can sign in: the API refuses every caller "
                "until an admin is added (safety-gateway user add ... --role admin)"
            )
        await self.notifications.open()
        if self.timeseries is not None:
            await self.timeseries.open()
        alarms = await self.store.load_open()
        self.redeliveries.load(await self.store.load_seen(self.clock() - WINDOW_S))
        self.book.load(alarms)
        self.dispatcher.restore(alarms)
        if alarms:
            log.warning("reloaded %d open alarms from the store", len(alarms))
        if self.store.recovery is not None:
            self._raise_store_failure(self.store.recovery)
        await self.tasks.open()
        self.tasks.start("store-writer", self.store.run_writer, supervised=False)
        self.tasks.start("mqtt", self.link.run)
        self.tasks.start("rule-tick", partial(every, self._tick_interval, self.tick))
        self.tasks.start("loop-watch", partial(watch_loop_lag, self._observe_lag))
        if self.systemd.watchdog_interval_s is not None:
            self.tasks.start("watchdog", self.systemd.run_watchdog)
        self.tasks.start("live-flush", self.live.run_flusher)
        self.tasks.start("notifications", self.notifications.run)
        if self.timeseries is not None:
            self.tasks.start("timeseries", self.timeseries.run)
        if self.device_series is not None:
            self.tasks.start("status-points", partial(status_points, self.device_series))
        self.mailer = ReportMailer.configured(
            self.config, self.store, self.inventory, self.engine.status, self.clock
        )
        if self.mailer is not None:
            self.tasks.start("daily-report", self.mailer.run)
        for bus, link in self.modbus.links.items():
            self.tasks.start(f"modbus {bus}", partial(link.run, self.modbus_sink))
        self.tasks.start("storage", self.housekeeping.run)
        if "reminders" not in self.records.failures:
            self.tasks.start("reminders", self.reminders.run)
        if self.records.people_open:
            self.tasks.start("people-prune", self._prune_people_daily)
        if self.config_path is not None:
            self.tasks.start("config-reload", self._reload_on_request)
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_reload)
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
        if not self.tasks.running:
            return
        try:
            # The watchdog task runs on until the end: a shutdown that hangs is systemd's.
            self.systemd.notify("STOPPING=1")
            if self.config_path is not None:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            await self.tasks.cancel("config-reload")
            await self.tasks.cancel("daily-report")
            await self.tasks.cancel("reminders")
            await self.tasks.cancel("storage")
            await self.tasks.cancel("people-prune")
            await self.tasks.cancel("loop-watch")
            await self.tasks.cancel("rule-tick")
            await self.tasks.cancel("live-flush")
            for link in self.modbus.links.values():
                link.stop()
            for bus in self.modbus.links:
                await self.tasks.cancel(f"modbus {bus}")
            self.link.pause()  # take no more messages; the broker keeps them for us
            await self.store.flush(timeout_s=5.0)  # commit, then acknowledge what we took
            await self.link.stop(grace_s=2.0)  # let queued commands and alarms leave
            await self.tasks.cancel("mqtt")
            self.store.stop()
            await self.tasks.join("store-writer")
            await self.tasks.cancel("notifications")  # pending steps stay in the store
            await self.tasks.cancel("status-points")
            if self.timeseries is not None:
                await self.timeseries.close()  # last points to the server, or to the outbox
                await self.tasks.cancel("timeseries")
        finally:
            try:
                await self.tasks.close(exc_type, exc, tb)
            finally:
                await self._release()
                log.info("gateway %s stopped", self.config.gateway.id)

    async def _release(self) -> None:
        # Always, even when interrupted: the store's thread would keep the process alive.
        try:
            await self.notifications.close()
            await self._http.aclose()
        finally:
            try:
                await self.records.close()
            finally:
                await self.store.close()

    # The databases beside the alarm path, by their usual names (routes and tests use them).
    @property
    def open_failures(self) -> dict[str, str]:
        return self.records.failures

    @property
    def audit(self) -> AuditLog:
        return self.records.audit

    @property
    def people(self) -> People:
        return self.records.people

    @property
    def links(self) -> AckLinks:
        return self.records.links

    @property
    def hazards(self) -> HazardStore:
        return self.records.hazards

    @property
    def incidents(self) -> IncidentStore:
        return self.records.incidents

    @property
    def duty(self) -> DutyStore:
        return self.records.duty

    async def sync_contacts(self) -> None:
        await self.records.sync_contacts(self.config)

    async def prune_people(self) -> None:
        sessions = self.config.http.sessions
        await self.records.prune_people(
            sessions.idle_minutes * 60.0, sessions.absolute_hours * 3600.0
        )

    async def _prune_people_daily(self) -> None:
        while True:
            await asyncio.sleep(PEOPLE_PRUNE_S)
            await self.prune_people()

    def _raise_store_failure(self, recovery: StoreRecovery) -> None:
        """The gateway's own `store_failure` alarm (device = the gateway's id) at every site
        it decides for, so that each site's console shows it; latched: a person closes it
        once the disk is looked at. (A bureau deciding no site has health and the log only:
        people there act only on central alarm types, see `Authority.acts_on`.)"""
        now = self.clock()
        severity = DEFAULT_SEVERITY[AlarmType.STORE_FAILURE]
        for site in self.inventory.sites:
            if not self.authority.decides(site):
                continue
            key = AlarmKey(site, self.config.gateway.id, AlarmType.STORE_FAILURE)
            self.store_failure_keys.append(key)
            change = AlarmChange(
                key, ChangeKind.RAISE, severity, Reason.STORE_CORRUPT, latched=True
            )
            self.dispatcher.persist(self.book.apply(change, now))

    # -------------------------------------------------------------------- reload
    def request_reload(self) -> None:
        """SIGHUP: read the configuration file again (in the `config-reload` task)."""
        self._reload_wanted.set()

    async def _reload_on_request(self) -> None:
        assert self.config_path is not None
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            self.last_reload = await reload_config(self, self.config_path)

    async def apply_config(self, plan: ReloadPlan, rules: Sequence[DeviceRules]) -> None:
        """Take a checked configuration and its rules. Everything the alarm path reads
        changes in one synchronous step, between two messages (about 0.1 s with 10,000
        devices); then the Modbus buses whose devices changed are restarted (a bus left as
        it was keeps polling throughout)."""
        config = plan.config
        now = self.clocks.now()
        notifiers = build_notifiers(config.notify, self._http)
        # ---- one step: no await from here to the end of the swap
        self.inventory.reload(config)
        self.engine.reconfigure(rules, now)
        self.router.forget_routes(config.codecs)
        self.notifications.reconfigure(config, notifiers)
        self.reminders.reconfigure(config, self.inventory, notifiers)
        buses = self.modbus.reconfigure(config)
        if self.mailer is not None:
            self.mailer.reconfigure(config)
        self.config = config
        self.loaded_at = now.wall
        # ---- the swap is done
        await self.sync_contacts()
        for bus, link in buses.stopped.items():
            await self._drain(bus, link)
            link.stop()
            await self.tasks.cancel(f"modbus {bus}")
        for bus, link in buses.started.items():
            self.tasks.start(f"modbus {bus}", partial(link.run, self.modbus_sink))

    async def _drain(self, bus: str, link: ModbusLink, timeout_s: float = 10.0) -> None:
        """Let a bus about to stop send the commands queued on it (a close_valve) first.
        (The bus has no event for an empty queue: it is looked at every 50 ms, bounded.)"""
        for _ in range(int(timeout_s / 0.05)):
            if not pending_commands(link):
                return
            await asyncio.sleep(0.05)
        log.error("modbus %s stopped for a reload with commands still queued", bus)

    def tick(self) -> None:
        rule_tick(self.clocks.now(), self.engine, self.dispatcher, self.central, self.metrics)

    # ------------------------------------------------------------------ plumbing
    def _on_message(
        self, topic: str, payload: bytes, delivery: Delivery, mid: int, dup: bool
    ) -> int | None:
        return self.router.on_message(topic, payload, delivery, mid, dup)

    def _on_duplicate(self, topic: str, mid: int) -> None:
        self.router.duplicate(topic, mid)

    def _on_catchup(self, behind: bool) -> None:
        self.router.on_catchup(behind)

    def _on_durable(self, seq: int) -> None:
        self.link.durable(seq)

    def _committed(self, events: Sequence[AlarmEvent]) -> None:
        self.fanout.on_committed(events)

    def _current_alarm(self, alarm_id: str) -> AlarmEvent | None:
        alarm = self.book.get(alarm_id)
        return self.alarm_context.event(alarm, Action.UPDATED) if alarm is not None else None

    def _observe_lag(self, lag: float) -> None:
        self.metrics.loop_lag.observe(lag)
        self.loop_lag_max_s = max(self.loop_lag_max_s, lag)

    # --------------------------------------------------------------------- views
    def alarm_view(self, alarm: Alarm, timeline: bool = True) -> dict[str, Any]:
        return alarm_view(alarm, self.alarm_context, self.clockface, timeline)

    def _ingest_deps(self, clock: Callable[[], float]) -> IngestDeps:
        """What both ways in hand readings to; the readings also feed the commissioning
        page's trends and raw payloads (gateway.trend), beside the time series."""
        self.trends = DeviceTrends(
            clock, self._gas_alarm_open, HandOpeningTrail(self.records.audit, self.metrics)
        )
        self.raw_payloads = RawPayloads()
        return IngestDeps(
            self.inventory,
            self.engine,
            self.dispatcher,
            self.authority,
            self.live,
            self.rejects,
            self.metrics,
            self.clocks,
            ReadingsTee(self.trends, self.timeseries),
        )

    def _gas_alarm_open(self, valve: DeviceRef) -> bool:
        """A gas alarm on a detector that closes `valve` is not closed yet."""
        return any(
            self.book.find(AlarmKey(d.site, d.device, AlarmType.GAS_LEAK)) is not None
            for d in self.inventory.detectors_closing(valve)
        )

    def device_view(self, ref: DeviceRef) -> dict[str, Any] | None:
        installed = self.inventory.get(ref)
        if installed is None:
            return None
        return device_json(installed, self.engine.status(ref), self.clockface)

    def health(self) -> dict[str, Any]:
        return health_report(self)
