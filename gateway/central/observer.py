"""`CentralObserver`: everything central mode adds to the message path (DESIGN section 2).

For a site its edge gateway serves, this gateway observes only: the edge's alarms and
command records are mirrored from its topics, its presence and uplink are watched, and an
`edge_offline` alarm is raised here, for the bureau, when the edge stays offline. People
act here only on those `edge_offline` alarms; everything else at the site is the edge's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from drivers import codec
from drivers.codec import Channel, Rejected, RejectReason, TopicParser
from gateway.actuate.wire import CommandMessage
from gateway.alarms.book import Alarm, AlarmBook, AlarmState
from gateway.alarms.dispatch import AlarmDispatcher
from gateway.alarms.mirror import ForeignAlarm, mirror
from gateway.alarms.store import AlarmStore
from gateway.central.edges import (
    CENTRAL_ALARM_TYPES,
    EdgeLink,
    EdgeState,
    EdgeWatch,
    Presence,
    describe,
    edge_alarm_changes,
    edge_json,
)
from gateway.central.mirrored import MirroredAlarm
from gateway.config.clockface import Clockface
from gateway.config.clocks import Clocks
from gateway.config.inventory import Inventory
from gateway.health.metrics import Metrics
from gateway.health.ratelimit import OncePerInterval
from gateway.live.hub import LiveHub
from rules.model import AlarmType, DeviceRef, Instant

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def observed_sites(inventory: Inventory) -> dict[str, str]:
    """Sites an edge gateway serves (DESIGN section 2), each with that gateway's id (its
    `edge_gateway`): here we observe them only."""
    return {
        s.id: s.edge_gateway
        for s in inventory.sites.values()
        if s.served_by == "edge" and s.edge_gateway is not None
    }


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


class Authority:
    """Which sites this gateway decides for: all but those an edge gateway serves."""

    def __init__(self, edge_gateways: Mapping[str, str]) -> None:
        self.observed = frozenset(edge_gateways)
        self.edge_gateways = dict(edge_gateways)  # site -> the id of the edge gateway serving it

    def decides(self, site: str) -> bool:
        """False for a site its edge gateway serves: acting here would bypass the edge."""
        return site not in self.observed

    def acts_on(self, alarm: Alarm) -> bool:
        """Whether people act on this alarm here: every alarm of a site this gateway serves,
        and, for a site its edge serves, only the alarms raised here about that edge."""
        return self.decides(alarm.site) or alarm.type.value in CENTRAL_ALARM_TYPES


class CentralObserver:
    def __init__(
        self,
        *,
        authority: Authority,
        gateway_id: str,
        book: AlarmBook,
        store: AlarmStore,
        dispatcher: AlarmDispatcher,
        knows: Callable[[DeviceRef], bool],
        live: LiveHub,
        metrics: Metrics,
        clockface: Clockface,
        edge_offline_after_s: float,
        clocks: Clocks,
    ) -> None:
        self._observed = authority.observed
        self._gateway_id = gateway_id
        self._book = book
        self._store = store
        self._dispatcher = dispatcher
        self._knows = knows
        self._live = live
        self._metrics = metrics
        self._clockface = clockface
        self._offline_after_s = edge_offline_after_s
        self._clocks = clocks
        self.edges = EdgeWatch(authority.edge_gateways)
        # A configured edge that keeps listing other sites (or a forgery with its id) is
        # told once a minute, not once per presence.
        self._site_list_log = OncePerInterval(60.0, max_keys=1_000)

    # ------------------------------------------------------------- the edge's topics
    def on_alarm(self, site: str, payload: bytes, now: float) -> None:
        if site not in self._observed:
            return  # our own publication, echoed back by the broker
        msg = _parse(MirroredAlarm, payload)
        ref = DeviceRef(msg.site, msg.device)
        if msg.site != site:
            raise Rejected(RejectReason.WRONG_TYPE, f"an alarm of site {site} expected")
        if not self._knows(ref):
            raise Rejected(RejectReason.UNKNOWN_DEVICE, f"{ref} is not in the configuration")
        try:
            writes = mirror(self._book, msg.event(now), now)
        except ForeignAlarm as exc:
            raise Rejected(RejectReason.FOREIGN_ALARM, str(exc)) from None
        for write in writes:
            self._dispatcher.persist(write)
        self._metrics.messages.inc(Channel.ALARMS.value)

    def on_command(self, site: str, payload: bytes) -> None:
        if site not in self._observed:
            return  # our own publication, echoed back by the broker
        msg = _parse(CommandMessage, payload)
        ref = DeviceRef(msg.site, msg.device)
        if msg.site != site:
            raise Rejected(RejectReason.WRONG_TYPE, f"a command of site {site} expected")
        if not self._knows(ref):
            raise Rejected(RejectReason.UNKNOWN_DEVICE, f"{ref} is not in the configuration")
        self._store.submit_command(msg.record())  # for the bureau's daily report
        self._metrics.messages.inc(Channel.COMMANDS.value)

    def on_presence(self, gateway_id: str, payload: bytes, now: Instant) -> None:
        if gateway_id == self._gateway_id:
            return  # our own, echoed back
        msg = _parse(Presence, payload)
        if msg.gateway != gateway_id:
            raise Rejected(RejectReason.WRONG_TYPE, f"gateway {msg.gateway!r} on {gateway_id!r}")
        own = self.edges.sites_of(gateway_id)
        if not own:
            raise Rejected(
                RejectReason.UNKNOWN_GATEWAY, f"gateway {gateway_id!r} serves no edge site here"
            )
        if set(msg.sites) != set(own):  # the configuration wins: only `own` are changed
            self._site_list_differs(gateway_id, msg.sites, own, now)
        self._edge_changed(self.edges.on_presence(gateway_id, msg.online, now))
        self._metrics.messages.inc(Channel.PRESENCE.value)

    def _site_list_differs(
        self, gateway_id: str, listed: tuple[str, ...], own: tuple[str, ...], now: Instant
    ) -> None:
        due = self._site_list_log.due(now.mono, gateway_id)  # configured ids only: bounded
        if due is None:
            return
        log.warning(
            "edge gateway %s lists sites %s; configured for it here: %s (only these count)%s",
            gateway_id, ", ".join(listed)[:200] or "none", ", ".join(own), due.suffix,
        )  # fmt: skip
        self._site_list_log.written(now.mono, gateway_id)

    def on_uplink(self, site: str, payload: bytes, now: Instant) -> None:
        if payload.strip() not in (b"0", b"1"):
            raise Rejected(RejectReason.WRONG_TYPE, "bridge state must be 1 or 0")
        self._edge_changed(self.edges.on_uplink(site, payload.strip() == b"1", now))
        self._metrics.messages.inc(Channel.UPLINK.value)

    # ------------------------------------------------------------- edge_offline
    def tick(self, now: Instant) -> None:
        """Raise `edge_offline` for an edge offline long enough; clear it when it is back."""
        if not self._observed:
            return
        active = [
            a.key
            for a in self._book.open_alarms()
            if a.type is AlarmType.EDGE_OFFLINE and a.state is AlarmState.ACTIVE
        ]
        changes = edge_alarm_changes(self.edges.links.values(), active, now, self._offline_after_s)
        for change in changes:  # this gateway's own alarms: not filtered like the edge's
            self._dispatcher.persist(self._book.apply(change, now.wall))

    def _edge_changed(self, changes: list[tuple[EdgeLink, EdgeState]]) -> None:
        for link, before in changes:
            level, line = describe(link, before)
            log.log(level, line)
            edge = edge_json(link, self._clockface)
            self._live.push(link.site, {"kind": "edge", "site": link.site, "edge": edge})
        if changes:
            self.tick(self._clocks.now())  # a gateway back clears its alarm at once


def _parse(model: type[M], payload: bytes) -> M:
    """A message from the network, typed at the boundary, or rejected with the reason the
    telemetry codec gives (malformed JSON, NaN) or the first field that is wrong."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            codec.load_json(payload)  # raises the reason: malformed, or NaN
        raise Rejected(RejectReason.WRONG_TYPE, _first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return f"{where}: {err['msg']}"
