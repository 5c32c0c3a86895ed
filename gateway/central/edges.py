"""Is the edge still there? (central mode: sites `served_by: edge`).

For a site its edge gateway serves, the bureau acts on nothing: it relies on the edge to
close the valve and phone the people. So the bureau must see at once when that edge is gone.
Two signals arrive, both retained on the bureau broker:

- the edge gateway's presence, `{prefix}/gateways/{id}`: `online` on connect, `offline` on a
  clean stop or as its will (crash, power loss, lost broker). JSON with the sites it serves
  (`Presence`); it counts for the sites configured `edge_gateway: {id}` only;
- the edge broker's bridge state, `{prefix}/{site}/bridge/state`: `1`/`0` (Mosquitto's bridge
  notifications, `deploy/mosquitto-bridge.conf`): `0` means nothing from the site reaches the
  bureau, whatever the gateway is doing.

Pure: messages and `now` (both clocks) in, states out. `gateway.central.observer` feeds it and
logs changes. How long an edge has been offline is counted on the monotonic clock, so a step
of the wall clock neither raises `edge_offline` early nor holds it back; `since` (shown) is
wall time.
An edge gateway offline for `edge_offline_after` raises a critical `edge_offline` alarm here,
at the bureau (its own alarm, which the bureau acknowledges and closes): the duty officer's
console sounds and the bureau's escalation runs. It clears when the gateway is back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.config.clockface import Clockface
from gateway.config.schema import Ident
from rules.model import (
    DEFAULT_SEVERITY,
    AlarmChange,
    AlarmKey,
    AlarmType,
    ChangeKind,
    Instant,
    Reason,
)

# Alarms a central gateway raises itself about a site its edge serves: the bureau acts on
# them (ack, close) and they follow the whole escalation policy, since the edge tells nobody.
CENTRAL_ALARM_TYPES = frozenset({AlarmType.EDGE_OFFLINE.value})


class EdgeState(StrEnum):
    ONLINE = "online"  # the gateway is connected and the uplink is up (or not reported)
    GATEWAY_OFFLINE = "gateway_offline"  # the site is not protected by its gateway
    UPLINK_DOWN = "uplink_down"  # the bureau is blind; the site may still be protected
    UNKNOWN = "unknown"  # never heard of since this gateway started


@dataclass(slots=True)
class EdgeLink:
    site: str
    gateway: str | None = None
    gateway_online: bool | None = None
    gateway_since: float | None = None  # wall time: shown
    gateway_since_mono: float | None = None  # the same instant, for the offline delay
    uplink_up: bool | None = None
    uplink_since: float | None = None

    @property
    def state(self) -> EdgeState:
        # A gateway last heard of as offline stays the verdict while the uplink is down too:
        # the worst known state, since nothing newer can have arrived.
        if self.gateway_online is False:
            return EdgeState.GATEWAY_OFFLINE
        if self.uplink_up is False:
            return EdgeState.UPLINK_DOWN
        if self.gateway_online:
            return EdgeState.ONLINE
        return EdgeState.UNKNOWN

    @property
    def since(self) -> float | None:
        """When the current state began (as this gateway heard it)."""
        if self.state is EdgeState.UPLINK_DOWN:
            return self.uplink_since
        if self.state is EdgeState.ONLINE and self.uplink_since is not None:
            return max(self.uplink_since, self.gateway_since or 0.0)
        return self.gateway_since


def edge_json(link: EdgeLink | None, clock: Clockface) -> dict[str, Any] | None:
    if link is None:
        return None
    return {"gateway": link.gateway, "state": link.state.value, "since": clock.iso(link.since)}


# An edge gateway serves one institution, rarely a few; a presence listing more is not one.
MAX_PRESENCE_SITES = 64


class Presence(BaseModel):
    """A gateway's presence on `{prefix}/gateways/{id}`, parsed strictly at the boundary
    (`model_validate_json`). Untrusted: what it says counts only for the sites the
    configuration gives to the topic's gateway id (`EdgeWatch.on_presence`)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    gateway: Ident
    status: Literal["online", "offline"]
    sites: tuple[Ident, ...] = Field(max_length=MAX_PRESENCE_SITES)

    @property
    def online(self) -> bool:
        return self.status == "online"


def presence_message(gateway_id: str, online: bool, sites: tuple[str, ...]) -> dict[str, Any]:
    return {"gateway": gateway_id, "status": "online" if online else "offline", "sites": sites}


class EdgeWatch:
    """The edge links of the observed sites, each bound to the gateway id the configuration
    says serves it (site -> gateway id). A presence changes only its own gateway's links."""

    def __init__(self, edge_gateways: Mapping[str, str]) -> None:
        self.links = {site: EdgeLink(site) for site in edge_gateways}
        self._sites_of: dict[str, tuple[str, ...]] = {}
        for site, gateway in sorted(edge_gateways.items()):
            self._sites_of[gateway] = (*self._sites_of.get(gateway, ()), site)

    def sites_of(self, gateway_id: str) -> tuple[str, ...]:
        """The observed sites this gateway id serves (configuration); () for any other id."""
        return self._sites_of.get(gateway_id, ())

    def on_presence(
        self, gateway_id: str, online: bool, now: Instant
    ) -> list[tuple[EdgeLink, EdgeState]]:
        """Applies to every site configured for `gateway_id`, whatever the message lists:
        the configuration, not the payload, says which sites a gateway serves. Returns the
        links whose state changed, each with its state before."""
        changed = []
        for site in self.sites_of(gateway_id):
            link = self.links[site]
            before = link.state
            if link.gateway_online is not online or link.gateway != gateway_id:
                link.gateway, link.gateway_online = gateway_id, online
                link.gateway_since, link.gateway_since_mono = now.wall, now.mono
            if link.state is not before:
                changed.append((link, before))
        return changed

    def on_uplink(self, site: str, up: bool, now: Instant) -> list[tuple[EdgeLink, EdgeState]]:
        link = self.links.get(site)
        if link is None or link.uplink_up is up:
            return []
        before = link.state
        link.uplink_up, link.uplink_since = up, now.wall
        return [(link, before)] if link.state is not before else []

    def get(self, site: str) -> EdgeLink | None:
        return self.links.get(site)


def describe(link: EdgeLink, before: EdgeState) -> tuple[int, str]:
    """A change of an edge link as a log level and line (for the bureau's log)."""
    state = link.state
    who = f"edge gateway {link.gateway or '?'} of site {link.site}"
    if state is EdgeState.GATEWAY_OFFLINE:
        return logging.ERROR, f"{who} is OFFLINE: the site's alarms and gas shut-off are not served"
    if state is EdgeState.UPLINK_DOWN:
        return logging.WARNING, f"uplink of site {link.site} is down: the bureau sees nothing of it"
    if state is EdgeState.ONLINE:
        return logging.WARNING, f"{who} is online again (was {before.value})"
    return logging.INFO, f"{who}: {state.value}"


def edge_alarm_changes(
    links: Iterable[EdgeLink], active: Iterable[AlarmKey], now: Instant, offline_after_s: float
) -> list[AlarmChange]:
    """`edge_offline` alarms to raise (offline long enough, not yet active) and to clear
    (the site's configured gateway is back)."""
    active_by_site: dict[str, list[AlarmKey]] = {}
    for key in active:
        active_by_site.setdefault(key.site, []).append(key)
    changes = []
    severity = DEFAULT_SEVERITY[AlarmType.EDGE_OFFLINE]
    for link in links:
        site_active = active_by_site.get(link.site, [])
        if link.gateway_online:
            changes += [
                AlarmChange(k, ChangeKind.CLEAR, severity, Reason.EDGE_GATEWAY_ONLINE)
                for k in site_active
            ]
        elif link.gateway_online is False and link.gateway is not None:
            key = AlarmKey(link.site, link.gateway, AlarmType.EDGE_OFFLINE)
            since = link.gateway_since_mono if link.gateway_since_mono is not None else now.mono
            if key not in site_active and now.mono - since >= offline_after_s:
                changes.append(
                    AlarmChange(key, ChangeKind.RAISE, severity, Reason.EDGE_GATEWAY_OFFLINE)
                )
    return changes
