"""The alarm path: wire message -> rule engine -> command out -> alarm book -> store.

Everything in `on_message` and `tick` is synchronous and in memory. Its order is the
safety argument of the product:
  1. commands the engine asks for (close the gas) are queued on the MQTT priority lane;
  2. the alarm book records the transition in memory (the API sees it at once);
  3. the store gets the write on its queue; publication to MQTT and the console happens
     only after the commit (`on_committed`).
Notification, storage and the API never sit between a reading and the shut-off command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from drivers import codec
from drivers.codec import Channel, Rejected, RejectReason, TopicParser
from drivers.mqtt import PRIORITY_ALARM, Delivery, MqttLink, Publication
from gateway.actuate.actuator import Actuator, SentCommand
from gateway.alarms.book import (
    SYSTEM,
    Action,
    Alarm,
    AlarmBook,
    AlarmState,
    AlarmWrite,
    Disposition,
    TransitionRefused,
)
from gateway.alarms.store import AlarmStore, _AlarmOp
from gateway.central.edges import (
    CENTRAL_ALARM_TYPES,
    BadPresence,
    EdgeLink,
    EdgeState,
    EdgeWatch,
    describe,
    edge_alarm_changes,
    edge_json,
    parse_presence,
)
from gateway.config.inventory import InstalledDevice, Inventory
from gateway.health.metrics import Metrics
from gateway.health.ratelimit import OncePerInterval
from gateway.live.hub import LiveHub
from gateway.status.views import Clockface, CommandMessage, alarm_json
from rules.engine import RuleEngine
from rules.model import (
    AlarmKey,
    AlarmType,
    Availability,
    CommandKind,
    DeviceRef,
    DeviceType,
    FaultReport,
    Outcome,
    Reading,
    Reason,
    Severity,
)

log = logging.getLogger(__name__)

# Which commands make sense for which device type; anything else is refused with 400.
COMMANDS_FOR: dict[DeviceType, frozenset[CommandKind]] = {
    DeviceType.GAS_VALVE: frozenset(
        {CommandKind.CLOSE_VALVE, CommandKind.OPEN_VALVE, CommandKind.RESET}
    ),
    DeviceType.ELECTRICAL_FIRE_MONITOR: frozenset({CommandKind.TRIP, CommandKind.RESET}),
}


class CommandNotApplicable(Exception):
    pass


class AlarmListener(Protocol):
    def alarm_changed(self, snapshot: dict[str, Any]) -> None: ...


class TimeSeriesSink(Protocol):
    def reading(self, r: Reading, device_type: str) -> None: ...
    def alarm(self, snapshot: dict[str, Any]) -> None: ...
    def device_status(
        self, site: str, device: str, online: bool, fault: bool, at: float
    ) -> None: ...


STATUS_ALARMS = frozenset({"device_offline", "device_fault"})


class ModbusCapabilities(Protocol):
    def handles(self, ref: DeviceRef) -> bool: ...
    def supports(self, ref: DeviceRef, cmd: CommandKind) -> bool: ...


@dataclass(frozen=True, slots=True)
class AlarmChangeMessage:
    site: str
    payload: dict[str, Any]


def control_subscriptions(topics: TopicParser, observed: frozenset[str]) -> list[str]:
    """The control lane's topics: device events, statuses and acks; in central mode also
    what the edge gateways publish about the sites they serve."""
    sites = sorted(observed)
    if not sites:
        return topics.control_subscriptions
    return (
        topics.control_subscriptions
        + [topics.alarm_subscription(s) for s in sites]
        + [topics.commands_subscription(s) for s in sites]
        + [topics.uplink_subscription(s) for s in sites]
        + [topics.presence_subscription()]
    )


def observed_sites(inventory: Inventory) -> frozenset[str]:
    """Sites an edge gateway serves (DESIGN section 2): here we observe them only."""
    return frozenset(s.id for s in inventory.sites.values() if s.served_by == "edge")


# Topics of configured devices, parsed once (every topic of 10,000 devices, several times).
_ROUTES_CACHED = 100_000


@dataclass(frozen=True, slots=True)
class _DeviceRoute:
    ref: DeviceRef
    channel: Channel
    device_type: str  # the time series' `type` tag
    authority: bool  # this gateway serves the site (it is not only observed)


class AlarmPipeline:
    def __init__(
        self,
        *,
        inventory: Inventory,
        engine: RuleEngine,
        book: AlarmBook,
        store: AlarmStore,
        actuator: Actuator,
        link: MqttLink,
        live: LiveHub,
        metrics: Metrics,
        clockface: Clockface,
        topic_prefix: str,
        gateway_id: str,
        edge_offline_after_s: float,
        max_payload_bytes: int,
        clock: Callable[[], float],
        reading_sinks: Sequence[Callable[[Reading], None]] = (),
    ) -> None:
        self._inventory = inventory
        self._engine = engine
        self._book = book
        self._store = store
        self._actuator = actuator
        self._link = link
        self._live = live
        self._metrics = metrics
        self._clockface = clockface
        self._prefix = topic_prefix
        self._topics = TopicParser(topic_prefix)
        self._max_payload = max_payload_bytes
        self._clock = clock
        self._reading_sinks = list(reading_sinks)
        self.observed = observed_sites(inventory)
        self.edges = EdgeWatch(self.observed)
        self.edge_offline_after_s = edge_offline_after_s
        self._gateway_id = gateway_id
        self._reject_log = OncePerInterval(logging.getLogger("gateway.rejected"))
        self.modbus: ModbusCapabilities | None = None
        self.notifications: AlarmListener | None = None
        self.timeseries: TimeSeriesSink | None = None
        self.in_maintenance: Callable[[str, str], bool] = lambda site, device: False
        self.rejected_by_reason: dict[str, int] = {}
        self._routes: dict[str, _DeviceRoute] = {}
        # The newest device time of each device's readings that came live during catch-up
        # (drivers.mqtt.catchup); readings from the backlog older than it skip the rules.
        self._live_ts: dict[DeviceRef, float] = {}

    def is_authority(self, site: str) -> bool:
        """False for a site its edge gateway serves: acting here would bypass the edge."""
        return site not in self.observed

    # ----------------------------------------------------------------- ingest
    def on_message(self, topic: str, payload: bytes, delivery: Delivery = Delivery.CURRENT) -> None:
        now = self._clock()
        try:
            self._ingest(topic, payload, now, delivery)
        except Rejected as r:
            self._reject(now, topic, r.reason, r.detail)
        except Exception:
            # A bug must not stop protection for every other device: log it with its
            # traceback, count it (health turns degraded), and go on with the next message.
            self._metrics.internal_errors.labels("ingest").inc()
            log.exception("internal error handling %s", topic)

    def on_catchup(self, behind: bool) -> None:
        """The bulk session starts or stops delivering backlog (drivers.mqtt.catchup)."""
        self._live_ts.clear()

    def _ingest(self, topic: str, payload: bytes, now: float, delivery: Delivery) -> None:
        if len(payload) > self._max_payload:
            raise Rejected(RejectReason.OVERSIZE, f"{len(payload)} bytes > {self._max_payload}")
        route = self._routes.get(topic)
        if route is None:
            route = self._route(topic, payload, now)
            if route is None:
                return  # a gateway-level message, handled
        ref = route.ref
        channel = route.channel
        if channel is Channel.CMD_ACK and not route.authority:
            # The edge matches its own commands' acks; their outcome comes on `commands`.
            self._count(channel.value)
            return
        if channel is Channel.TELEMETRY:
            decoded = codec.decode_telemetry(ref, payload, now)
            for q in decoded.rejected:
                self._reject(now, topic, q.reason, f"{q.quantity}: {q.detail}")
            if delivery is not Delivery.CURRENT and decoded.device_time:
                reading = decoded.reading
                newest = self._live_ts.get(ref)
                if delivery is Delivery.LIVE:
                    self._live_ts[ref] = reading.ts if newest is None else max(newest, reading.ts)
                elif newest is not None and reading.ts <= newest:
                    # Older than a reading the engine already took live: history for the
                    # time series, never a step back for the rules.
                    self._to_timeseries(reading, route)
                    self._count("telemetry_backlog")
                    return
            outcome = self._engine.on_reading(decoded.reading, now)
            self._live.device_changed(ref)
            self._to_timeseries(decoded.reading, route)
        elif channel is Channel.EVENT:
            outcome = self._engine.on_event(codec.decode_event(ref, payload, now), now)
            self._live.device_changed(ref)
        elif channel is Channel.STATUS:
            outcome = self._engine.on_availability(codec.decode_status(ref, payload), now)
            self._live.device_changed(ref)
        else:
            outcome = self._on_ack(ref, codec.decode_ack(payload), now)
        self._count(channel.value)
        if outcome:
            self.dispatch(outcome, now)

    def _route(self, topic: str, payload: bytes, now: float) -> _DeviceRoute | None:
        """Parse a topic not seen before: gateway-level messages are handled here (None);
        a configured device's route is remembered (bounded: unknown topics are not)."""
        route = self._topics.parse(topic)
        ref = route.ref
        if route.channel is Channel.ALARMS:
            self._mirror(ref.site, payload, now)
            return None
        if route.channel is Channel.COMMANDS:
            self._observe_command(ref.site, payload)
            return None
        if route.channel is Channel.PRESENCE:
            self._on_presence(ref.device, payload, now)
            return None
        if route.channel is Channel.UPLINK:
            self._on_uplink(ref.site, payload, now)
            return None
        installed = self._inventory.get(ref)
        if installed is None or not self._engine.knows(ref):
            raise Rejected(RejectReason.UNKNOWN_DEVICE, f"{ref} is not in the configuration")
        found = _DeviceRoute(ref, route.channel, installed.type.value, self.is_authority(ref.site))
        if len(self._routes) < _ROUTES_CACHED:
            self._routes[topic] = found
        return found

    def _count(self, channel: str) -> None:
        self._metrics.messages.inc(channel)

    def _to_timeseries(self, reading: Reading, route: _DeviceRoute | None = None) -> None:
        # The authority for a site writes its time series; an observer would write it twice.
        if self.timeseries is not None:
            if route is None:
                installed = self._inventory.get(reading.ref)
                if installed is not None and self.is_authority(reading.ref.site):
                    self.timeseries.reading(reading, installed.type.value)
            elif route.authority:
                self.timeseries.reading(reading, route.device_type)
        for sink in self._reading_sinks:
            sink(reading)

    def _mirror(self, site: str, payload: bytes, now: float) -> None:
        if site not in self.observed:
            return  # our own publication, echoed back by the broker
        snap = codec.load_json(payload)
        if not isinstance(snap, dict) or snap.get("site") != site:
            raise Rejected(RejectReason.WRONG_TYPE, "an alarm object of this site expected")
        for write in self._book.mirror(snap, self._clockface.parse, now):
            self._persist(write)
        self._metrics.messages.inc("alarms")

    def _observe_command(self, site: str, payload: bytes) -> None:
        if site not in self.observed:
            return  # our own publication, echoed back by the broker
        try:
            msg = CommandMessage.model_validate(codec.load_json(payload))
        except ValidationError as exc:
            raise Rejected(RejectReason.WRONG_TYPE, _first_error(exc)) from None
        ref = DeviceRef(msg.site, msg.device)
        if msg.site != site:
            raise Rejected(RejectReason.WRONG_TYPE, f"a command of site {site} expected")
        if not self._engine.knows(ref):
            raise Rejected(RejectReason.UNKNOWN_DEVICE, f"{ref} is not in the configuration")
        self._store.submit_command(msg.record())  # for the bureau's daily report
        self._metrics.messages.inc(Channel.COMMANDS.value)

    def _on_presence(self, gateway_id: str, payload: bytes, now: float) -> None:
        if gateway_id == self._gateway_id:
            return  # our own, echoed back
        try:
            online, sites = parse_presence(gateway_id, codec.load_json(payload))
        except BadPresence as exc:
            raise Rejected(RejectReason.WRONG_TYPE, str(exc)) from None
        self._edge_changed(self.edges.on_presence(gateway_id, online, sites, now))
        self._metrics.messages.inc(Channel.PRESENCE.value)

    def _on_uplink(self, site: str, payload: bytes, now: float) -> None:
        if payload.strip() not in (b"0", b"1"):
            raise Rejected(RejectReason.WRONG_TYPE, "bridge state must be 1 or 0")
        self._edge_changed(self.edges.on_uplink(site, payload.strip() == b"1", now))
        self._metrics.messages.inc(Channel.UPLINK.value)

    def _edge_alarms(self, now: float) -> None:
        if not self.observed:
            return
        active = [
            a.key
            for a in self._book.open_alarms()
            if a.type is AlarmType.EDGE_OFFLINE and a.state is AlarmState.ACTIVE
        ]
        changes = edge_alarm_changes(
            self.edges.links.values(), active, now, self.edge_offline_after_s
        )
        for change in changes:  # this gateway's own alarms: not filtered like the edge's
            self._persist(self._book.apply(change, now))

    def acts_on(self, alarm: Alarm) -> bool:
        """Whether people act on this alarm here: every alarm of a site this gateway serves,
        and, for a site its edge serves, only the alarms raised here about that edge."""
        return self.is_authority(alarm.site) or alarm.type.value in CENTRAL_ALARM_TYPES

    def _edge_changed(self, changes: list[tuple[EdgeLink, EdgeState]]) -> None:
        for link, before in changes:
            level, line = describe(link, before)
            log.log(level, line)
            edge = edge_json(link, self._clockface)
            self._live.push(link.site, {"kind": "edge", "site": link.site, "edge": edge})
        if changes:
            self._edge_alarms(self._clock())  # a gateway back clears its alarm at once

    def _on_ack(self, ref: DeviceRef, ack: codec.CommandAck, now: float) -> Outcome:
        return self._command_result(ack.command_id, ref, ack.ok, ack.detail, now)

    def _reject(self, now: float, topic: str, reason: RejectReason, detail: str) -> None:
        self._metrics.rejected.labels(reason.value).inc()
        self.rejected_by_reason[reason.value] = self.rejected_by_reason.get(reason.value, 0) + 1
        # Key on the device part of the topic so that one noisy device logs once a minute.
        self._reject_log.warn(
            now,
            (topic.rsplit("/", 1)[0], reason.value),
            "rejected %s: %s: %s",
            topic,
            reason.value,
            detail,
        )

    # ------------------------------------------------ polled devices (PollSink)
    def poll_values(self, ref: DeviceRef, values: dict[str, float]) -> None:
        now = self._clock()
        try:
            good: dict[str, float] = {}
            for name, value in values.items():
                problem = codec.check_quantity(name, value)
                if problem is None:
                    good[name] = float(value)
                else:
                    self._reject(now, f"modbus/{ref}", problem.reason, f"{name}: {problem.detail}")
            if not good:
                return
            reading = Reading(ref, good, now)
            outcome = self._engine.on_reading(reading, now)
            self._live.device_changed(ref)
            self._to_timeseries(reading)
            self._metrics.messages.inc("modbus")
            self.dispatch(outcome, now)
        except Exception:
            self._metrics.internal_errors.labels("modbus").inc()
            log.exception("internal error handling a poll of %s", ref)

    def poll_unreachable(self, ref: DeviceRef) -> None:
        now = self._clock()
        av = Availability(ref, online=False, reason=Reason.POLL_FAILED)
        self._guarded(ref, lambda: self._engine.on_availability(av, now), now)

    def poll_fault(self, ref: DeviceRef, source: str, active: bool, detail: str) -> None:
        now = self._clock()
        if active:
            reason = (
                Reason.EXCEPTION_RESPONSE if source == "exception_response" else Reason.STATUS_BIT
            )
        else:
            reason = Reason.FAULT_CLEARED
        report = FaultReport(ref, source, active, reason)
        self._guarded(ref, lambda: self._engine.on_fault(report, now), now)

    def poll_command_result(self, job: Any, ok: bool, detail: str) -> None:
        now = self._clock()
        ref: DeviceRef = job.target.ref
        self._guarded(ref, lambda: self._command_result(job.command_id, ref, ok, detail, now), now)

    def _guarded(self, ref: DeviceRef, decide: Callable[[], Outcome], now: float) -> None:
        try:
            self.dispatch(decide(), now)
            self._live.device_changed(ref)
        except Exception:
            self._metrics.internal_errors.labels("modbus").inc()
            log.exception("internal error handling %s", ref)

    def _command_result(
        self, command_id: str, ref: DeviceRef, ok: bool, detail: str | None, now: float
    ) -> Outcome:
        """Shared by MQTT acks and Modbus read-backs: record, timeline, then the engine."""
        matched = self._actuator.complete(command_id, ref, ok, detail, now)
        if matched is None:
            return Outcome()
        sent, result = matched
        self._metrics.commands.labels(sent.cmd.value, "ok" if ok else "failed").inc()
        if sent.alarm_id is not None:
            info: dict[str, Any] = {
                "cmd": sent.cmd.value,
                "command_id": sent.id,
                "device": ref.device,
                "ok": ok,
            }
            if detail:
                info["detail"] = detail
            self._persist(self._book.annotate(sent.alarm_id, Action.COMMAND_RESULT, now, info))
        outcome = self._engine.on_command_result(result, now)
        return outcome

    # ------------------------------------------------------------- decisions
    def tick(self) -> None:
        now = self._clock()
        try:
            self.dispatch(self._engine.tick(now), now)
            self._edge_alarms(now)
        except Exception:
            self._metrics.internal_errors.labels("tick").inc()
            log.exception("internal error in rule tick")

    def dispatch(self, outcome: Outcome, now: float) -> None:
        if self.observed and outcome:
            # The edge decides for its sites: their alarms arrive mirrored, their devices
            # are commanded from there. The engine still runs here for device status.
            outcome = Outcome(
                [c for c in outcome.changes if c.key.site not in self.observed],
                [c for c in outcome.commands if c.ref.site not in self.observed],
            )
        if not outcome:
            return
        sent: list[SentCommand] = []
        for cmd in outcome.commands:  # 1. the valve first
            alarm_id = self._book.id_for(cmd.cause)
            sent.append(
                self._actuator.send(
                    cmd.ref,
                    cmd.cmd,
                    alarm_id=alarm_id,
                    requested_by=SYSTEM,
                    reason=cmd.reason.value,
                    now=now,
                )
            )
            self._metrics.commands.labels(cmd.cmd.value, "sent").inc()
        for change in outcome.changes:  # 2. the lifecycle, in memory
            self._persist(self._book.apply(change, now))
        for s in sent:  # 3. the command on its alarm's timeline (the alarm exists by now)
            if s.alarm_id is not None:
                detail = {
                    "cmd": s.cmd.value,
                    "command_id": s.id,
                    "device": s.ref.device,
                    "reason": s.reason,
                }
                self._persist(self._book.annotate(s.alarm_id, Action.COMMAND_SENT, now, detail))

    def restore(self, alarms: Sequence[Alarm]) -> None:
        """Re-seed the engine from alarms reloaded at start-up (re-asserts valve closes)."""
        now = self._clock()
        for a in alarms:
            reason = _reason(a.reason)
            self.dispatch(self._engine.restore(a.key, a.level, reason, now), now)

    def _persist(self, write: AlarmWrite | None, wait: bool = False) -> Any:
        if write is None:
            return None
        self._metrics.alarm_transitions.labels(write.alarm.type.value, write.action.value).inc()
        snapshot = self.alarm_view(write.alarm, timeline=False)
        snapshot["change"] = write.action.value
        return self._store.submit_alarm(write, snapshot, wait=wait)

    def on_committed(self, ops: Sequence[_AlarmOp]) -> None:
        """After the commit: tell the outside world (MQTT alarms topic, live console)."""
        for op in ops:
            site = op.write.alarm.site
            if site in self.observed:
                # Mirrored: shown here, not re-published (it would echo over the bridge).
                # Escalation keeps only the bureau's steps: the edge has phoned the site.
                self._live.alarm_changed(site, {"kind": "alarm", "alarm": op.snapshot})
                if self.notifications is not None:
                    self.notifications.alarm_changed(op.snapshot)
                continue
            self._link.publish(
                Publication(f"{self._prefix}/{site}/alarms", codec.encode(op.snapshot), qos=1),
                PRIORITY_ALARM,
            )
            if self.timeseries is not None:
                self.timeseries.alarm(op.snapshot)
                if op.snapshot["type"] in STATUS_ALARMS:
                    self._status_point(
                        DeviceRef(site, op.snapshot["device"]), op.write.alarm.updated_at
                    )
            self._live.alarm_changed(site, {"kind": "alarm", "alarm": op.snapshot})
            if self.notifications is not None:
                self.notifications.alarm_changed(op.snapshot)

    # ------------------------------------------------------------ people's actions
    async def ack(self, alarm_id: str, by: str, note: str | None) -> Alarm:
        write = self._book.ack(alarm_id, by, note, self._clock())
        await self._persist(write, wait=True)
        return write.alarm

    async def close(
        self, alarm_id: str, by: str, disposition: Disposition, note: str | None
    ) -> Alarm:
        write = self._book.close(alarm_id, by, disposition, note, self._clock())
        await self._persist(write, wait=True)
        return write.alarm

    def command(self, device: InstalledDevice, cmd: CommandKind, by: str) -> SentCommand:
        allowed = COMMANDS_FOR.get(device.type, frozenset())
        if cmd not in allowed:
            raise CommandNotApplicable(f"{cmd.value} is not a command for a {device.type.value}")
        ref = device.ref
        if (
            self.modbus is not None
            and self.modbus.handles(ref)
            and not self.modbus.supports(ref, cmd)
        ):
            raise CommandNotApplicable(f"the Modbus profile of {ref.device} has no {cmd.value}")
        if cmd is CommandKind.OPEN_VALVE:
            blocking = self._gas_alarms_on(ref)
            if blocking:
                a = blocking[0]
                raise TransitionRefused(
                    f"gas alarm {a.id} on {a.device} is {a.state.value}: the valve may be reopened "
                    "only after that alarm is closed, and by a person on site who has checked"
                )
            self._engine.on_manual_open(ref)
        now = self._clock()
        sent = self._actuator.send(
            ref, cmd, alarm_id=None, requested_by=by, reason="manual", now=now
        )
        self._metrics.commands.labels(cmd.value, "sent").inc()
        return sent

    def _gas_alarms_on(self, valve: DeviceRef) -> list[Alarm]:
        found = []
        for det in self._inventory.detectors_closing(valve):
            alarm = self._book.find(AlarmKey(det.site, det.device, AlarmType.GAS_LEAK))
            if alarm is not None:
                found.append(alarm)
        return found

    def _status_point(self, ref: DeviceRef, at: float) -> None:
        if self.timeseries is not None and self._engine.knows(ref):
            online, fault = self._engine.flags(ref)
            self.timeseries.device_status(ref.site, ref.device, online, fault, at)

    def status_snapshot(self, chunk: int = 500) -> Iterator[None]:
        """Every device's status as a time-series point (periodic: for online-rate charts).
        Yields after every `chunk` devices: ten thousand in one go held the loop 120 ms."""
        now = self._clock()
        for i, installed in enumerate(self._inventory):
            if installed.ref.site not in self.observed:
                self._status_point(installed.ref, now)
            if i % chunk == chunk - 1:
                yield

    def record(self, alarm_id: str, action: str, detail: dict[str, Any]) -> None:
        """A timeline entry from another part of the gateway (notification attempts)."""
        self._persist(self._book.annotate(alarm_id, Action(action), self._clock(), detail))

    def open_alarm_view(self, alarm_id: str) -> dict[str, Any] | None:
        alarm = self._book.get(alarm_id)
        return self.alarm_view(alarm, timeline=False) if alarm is not None else None

    # ------------------------------------------------------------------ views
    def alarm_view(self, alarm: Alarm, timeline: bool = True) -> dict[str, Any]:
        installed = self._inventory.get(DeviceRef(alarm.site, alarm.device))
        location = installed.config.location if installed else None
        view = alarm_json(alarm, self._clockface, timeline=timeline, location=location)
        view["maintenance"] = self.in_maintenance(alarm.site, alarm.device)
        return view

    def open_by_severity(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Severity}
        for a in self._book.open_alarms():
            counts[a.severity.value] += 1
        return counts


def _reason(raw: str | None) -> Reason | None:
    try:
        return Reason(raw) if raw else None
    except ValueError:
        return None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return f"{where}: {err['msg']}"
