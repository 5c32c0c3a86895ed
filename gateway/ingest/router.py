"""`MessageRouter`: one MQTT message -> topic route -> codec -> rule engine -> dispatch.

Everything is synchronous and in memory; its order is the safety argument (see
`gateway.alarms.dispatch`). The routes of configured devices' topics are parsed once and
remembered; topics of the gateway level (central mode) go to `gateway.central`. A bad
message is rejected with a reason and counted; a bug is logged with its traceback and
counted, and the next message is handled: one device never stops protection of the rest. A
copy the broker delivers again, after a restart, of a message whose changes were stored is
recognised before anything else and changes nothing (`gateway.ingest.redelivery`; after a
reconnect the MQTT link recognises it and reports it to `duplicate`). A copy a device sent
again (a new message to the broker) is recognised by its bytes once decoded, before the
rules (`gateway.ingest.resends`). The router also says when a message may be acknowledged
(the ack token). A device that names a payload mapping as its `codec` (issue 13) has its
telemetry and event messages read by that mapping; one message may then carry a reading,
events and the device's availability at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from zoneinfo import ZoneInfo

from drivers import codec
from drivers.codec import Channel, Rejected, RejectReason, TopicParser
from drivers.mapping import NATIVE, CompiledMapping, PayloadMapping
from drivers.mqtt import Delivery
from gateway.central.observer import CentralObserver
from gateway.ingest.raw import RawPayloads
from gateway.ingest.redelivery import Redeliveries
from gateway.ingest.resends import Resends
from gateway.ingest.series import IngestDeps
from rules.model import DeviceRef, Instant, Outcome, Reading

log = logging.getLogger(__name__)

# Topics of configured devices, parsed once (every topic of 10,000 devices, several times).
_ROUTES_CACHED = 100_000


@dataclass(frozen=True, slots=True)
class _DeviceRoute:
    ref: DeviceRef
    channel: Channel
    device_type: str  # the time series' `type` tag
    authority: bool  # this gateway serves the site (it is not only observed)
    resends: Resends  # the topic's recent payloads, to recognise a device's copy
    mapping: CompiledMapping | None  # the device's payload mapping (telemetry, event); None: native


class MessageRouter:
    def __init__(
        self,
        deps: IngestDeps,
        *,
        redeliveries: Redeliveries,
        central: CentralObserver,
        topic_prefix: str,
        max_payload_bytes: int,
        resend_window_s: float = 0.0,
        mappings: Mapping[str, PayloadMapping] | None = None,
        zone: tzinfo | None = None,
        raw_payloads: RawPayloads | None = None,
    ) -> None:
        self._inventory = deps.inventory
        self._engine = deps.engine
        self._dispatcher = deps.dispatcher
        self._central = central
        self._authority = deps.authority
        self._live = deps.live
        self._rejects = deps.rejects
        self._metrics = deps.metrics
        self._topics = TopicParser(topic_prefix)
        self._max_payload = max_payload_bytes
        self._clocks = deps.clocks
        self._series = deps.series
        self._redeliveries = redeliveries
        self._resend_window = resend_window_s
        self._routes: dict[str, _DeviceRoute] = {}
        self._mappings: Mapping[str, PayloadMapping] = mappings or {}
        self._zone = zone or ZoneInfo("Asia/Shanghai")  # a time without zone is the site's
        # The commissioning page's last payload of each device (kept whether or not a page
        # reads it: one dict store a message, cheaper than asking).
        self._raw = raw_payloads if raw_payloads is not None else RawPayloads()
        # The newest device time of each device's readings that came live during catch-up
        # (drivers.mqtt.catchup); readings from the backlog older than it skip the rules.
        self._live_ts: dict[DeviceRef, float] = {}

    def on_message(
        self,
        topic: str,
        payload: bytes,
        delivery: Delivery = Delivery.CURRENT,
        mid: int = 0,
        dup: bool = False,
    ) -> int | None:
        """Handle one message; returns the ack token: None to acknowledge it at once, or the
        store's write sequence to acknowledge it once that is durable."""
        # Both clocks once per message: the engine's deadlines and the rejects' log spacing
        # run on `now.mono`; what is shown or stored (receipt time, alarms) is `now.wall`.
        now = self._clocks.now()
        # (The live connection's session is clean: nothing on it is ever delivered again.)
        if dup and delivery is not Delivery.LIVE and self._redeliveries.stored(topic, payload, mid):
            self.duplicate(topic, mid)
            return None  # what its first copy changed is on disk
        writes = self._redeliveries.log
        before = writes.submitted
        try:
            self._ingest(topic, payload, now, delivery)
        except Rejected as r:
            self._rejects.reject(now.mono, topic, r.reason, r.detail)
        except Exception:
            # A bug must not stop protection for every other device: log it with its
            # traceback, count it (health turns degraded), and go on with the next message.
            self._metrics.internal_errors.labels("ingest").inc()
            log.exception("internal error handling %s", topic)
        # If the message changed an alarm, acknowledge it to the broker only once that
        # change is on disk: a crash in between makes the broker deliver it again.
        token = writes.submitted if writes.submitted != before else None
        if token is not None and mid and delivery is not Delivery.LIVE:
            try:
                self._redeliveries.caused_writes(topic, payload, mid, now.wall)
            except Exception:
                # Only a bug: the message was handled, so acknowledge it as usual; a copy
                # delivered again after a crash would be taken twice (logged and counted).
                self._metrics.internal_errors.labels("ingest").inc()
                log.exception("internal error remembering %s", topic)
        return token

    def duplicate(self, topic: str, mid: int) -> None:
        """A copy the broker delivered again of a message already taken: counted, no more."""
        self._rejects.reject(
            self._clocks.mono(), topic, RejectReason.DUPLICATE, f"packet {mid} was taken before"
        )

    def on_catchup(self, behind: bool) -> None:
        """The bulk session starts or stops delivering backlog (drivers.mqtt.catchup)."""
        self._live_ts.clear()

    def forget_routes(self, mappings: Mapping[str, PayloadMapping] | None = None) -> None:
        """The configuration was reloaded: topics are routed afresh (a removed device's
        messages are rejected as unknown, an added one's accepted, a codec changed)."""
        if mappings is not None:
            self._mappings = mappings
        self._routes.clear()

    def _ingest(self, topic: str, payload: bytes, now: Instant, delivery: Delivery) -> None:
        if len(payload) > self._max_payload:
            raise Rejected(RejectReason.OVERSIZE, f"{len(payload)} bytes > {self._max_payload}")
        route = self._routes.get(topic)
        if route is None:
            route = self._route(topic, payload, now)
            if route is None:
                return  # a gateway-level message, handled
        ref = route.ref
        channel = route.channel
        self._raw.keep(ref, channel, payload, now.wall)
        if channel is Channel.CMD_ACK and not route.authority:
            # The edge matches its own commands' acks; their outcome comes on `commands`.
            self._metrics.messages.inc(channel.value)
            return
        if route.mapping is not None:
            self._mapped(route, topic, payload, now, delivery)
            self._metrics.messages.inc(channel.value)
            return
        outcome: Outcome | None = None
        if channel is Channel.TELEMETRY:
            decoded = codec.decode_telemetry(ref, payload, now.wall)
            self._metrics.ignored_fields.value += decoded.ignored  # a plain int (Tally)
            again = route.resends.again(payload, decoded.device_time, now.mono, self._resend_window)
            if again is not None:
                # Acknowledged at once: the first copy's PUBACK waits for what it changed.
                raise Rejected(RejectReason.DUPLICATE, again)
            for q in decoded.rejected:
                self._rejects.reject(now.mono, topic, q.reason, f"{q.quantity}: {q.detail}")
            if (
                delivery is not Delivery.CURRENT
                and decoded.device_time
                and self._behind_live(decoded.reading, delivery, route)
            ):
                return
            outcome = self._engine.on_reading(decoded.reading, now)
            self._live.device_changed(ref)
            self._to_series(decoded.reading, route)
        elif channel is Channel.EVENT:
            event = codec.decode_event(ref, payload, now.wall)
            stamped = event.ts != now.wall
            again = route.resends.again(payload, stamped, now.mono, self._resend_window)
            if again is not None:
                raise Rejected(RejectReason.DUPLICATE, again)
            outcome = self._engine.on_event(event, now)
            self._live.device_changed(ref)
        elif channel is Channel.STATUS:
            outcome = self._engine.on_availability(codec.decode_status(ref, payload), now)
            self._live.device_changed(ref)
        else:
            ack = codec.decode_ack(payload)
            self._dispatcher.command_result(ack.command_id, ref, ack.ok, ack.detail, now)
        self._metrics.messages.inc(channel.value)
        if outcome:
            self._dispatcher.dispatch(outcome, now.wall)

    def _behind_live(self, reading: Reading, delivery: Delivery, route: _DeviceRoute) -> bool:
        """During catch-up (drivers.mqtt.catchup): a live reading moves the device's newest
        time; a backlog reading older than it is history for the time series (counted), never
        a step back for the rules — True, and the caller gives it to nobody else."""
        if delivery is Delivery.CURRENT:
            return False
        ref = reading.ref
        newest = self._live_ts.get(ref)
        if delivery is Delivery.LIVE:
            self._live_ts[ref] = reading.ts if newest is None else max(newest, reading.ts)
            return False
        if newest is not None and reading.ts <= newest:
            self._to_series(reading, route)
            self._metrics.messages.inc("telemetry_backlog")
            return True
        return False

    def _route(self, topic: str, payload: bytes, now: Instant) -> _DeviceRoute | None:
        """Parse a topic not seen before: gateway-level messages are handled here (None);
        a configured device's route is remembered (bounded: unknown topics are not)."""
        route = self._topics.parse(topic)
        ref = route.ref
        if route.channel is Channel.ALARMS:
            self._central.on_alarm(ref.site, payload, now.wall)
            return None
        if route.channel is Channel.COMMANDS:
            self._central.on_command(ref.site, payload)
            return None
        if route.channel is Channel.PRESENCE:
            self._central.on_presence(ref.device, payload, now)
            return None
        if route.channel is Channel.UPLINK:
            self._central.on_uplink(ref.site, payload, now)
            return None
        installed = self._inventory.get(ref)
        if installed is None or not self._engine.knows(ref):
            raise Rejected(RejectReason.UNKNOWN_DEVICE, f"{ref} is not in the configuration")
        mapping = None
        name = installed.config.codec
        if name != NATIVE and route.channel in (Channel.TELEMETRY, Channel.EVENT):
            # Checked at load: a device's codec names a mapping that exists (KeyError: a bug).
            mapping = self._mappings[name].compiled()
        found = _DeviceRoute(
            ref,
            route.channel,
            installed.type.value,
            self._authority.decides(ref.site),
            Resends(),
            mapping,
        )
        if len(self._routes) < _ROUTES_CACHED:
            self._routes[topic] = found
        return found

    def _mapped(
        self, route: _DeviceRoute, topic: str, payload: bytes, now: Instant, delivery: Delivery
    ) -> None:
        """A vendor's message read by the device's mapping: its reading, events and
        availability go to the engine as the native channels' would."""
        assert route.mapping is not None
        ref = route.ref
        decoded = route.mapping.decode(ref, payload, now.wall, self._zone)
        if decoded.ignored:
            self._metrics.ignored_fields.inc(decoded.ignored)
        again = route.resends.again(payload, decoded.device_time, now.mono, self._resend_window)
        if again is not None:
            raise Rejected(RejectReason.DUPLICATE, again)
        for q in decoded.rejected:
            self._rejects.reject(now.mono, topic, q.reason, f"{q.quantity}: {q.detail}")
        outcome = Outcome()
        if decoded.availability is not None:
            outcome.extend(self._engine.on_availability(decoded.availability, now))
        reading = decoded.reading
        if (
            reading is not None
            and decoded.device_time
            and self._behind_live(reading, delivery, route)
        ):
            reading = None
        if reading is not None:
            outcome.extend(self._engine.on_reading(reading, now))
            self._to_series(reading, route)
        for event in decoded.events:
            outcome.extend(self._engine.on_event(event, now))
        self._live.device_changed(ref)
        if outcome:
            self._dispatcher.dispatch(outcome, now.wall)

    def _to_series(self, reading: Reading, route: _DeviceRoute) -> None:
        # The authority for a site writes its time series; an observer would write it twice.
        if self._series is not None and route.authority:
            self._series.reading(reading, route.device_type)
