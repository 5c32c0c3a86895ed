"""The county bureau's overview (DESIGN section 8: `GET /api/overview`, the `/bureau` page).

Functional core, imperative shell. The figures are computed by plain functions that take
data (device states, open alarms, offline intervals, `now`) and return data:
`site_status`, `summarize_site` and `sort_sites`, and the JSON they are written as; the
offline intervals and the online rate are `gateway.status.availability`'s, the same as the
daily report's. The shell is `gateway.overview.gather`, which reads the gateway (inventory,
rule engine, alarm book, store) once per request with one `now`, and
`gateway.http.overview`, which serves them.

Online rate over 24 h: device-time online / device-time in the window [now - 24 h, now],
for the devices known now (heard since start, or offline); a device not heard from since
start-up is `unknown` and left out. Offline time is the union of the device's
`device_offline` alarm intervals (raised or returned -> cleared or closed, or now while
active; from the alarm's timeline) clipped to the window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from gateway.alarms.book import Alarm, AlarmState
from gateway.central.edges import EdgeLink, EdgeState, edge_json
from gateway.config.clockface import Clockface
from gateway.config.schema import SiteConfig, SiteKind
from gateway.status.availability import (
    Availability,
)
from gateway.status.device import DeviceState
from rules.model import Severity

WINDOW_S = 24 * 3600.0
RECENT_LIMIT = 500

KIND_LABELS: dict[SiteKind, str] = {
    SiteKind.ELDERLY_CARE: "养老机构",
    SiteKind.CHILD_WELFARE: "儿童福利机构",
    SiteKind.RELIEF_STATION: "救助管理站",
    SiteKind.FUNERAL: "殡葬服务机构",
    SiteKind.MARRIAGE_REGISTRY: "婚姻登记处",
    SiteKind.OTHER: "其他",
}
DEVICE_STATES = tuple(s.value for s in DeviceState)  # online, offline, fault, unknown
SEVERITIES = tuple(s.value for s in Severity)  # critical, major, minor, warning


# --------------------------------------------------------------------------- status
class SiteStatus(StrEnum):
    ALARM = "alarm"  # a critical or major alarm is open
    WARNING = "warning"  # other open alarms, or devices offline or faulty
    OK = "ok"

    @property
    def rank(self) -> int:
        """Lower sorts first: the site that needs attention most."""
        return _STATUS_RANK[self]


_STATUS_RANK = {SiteStatus.ALARM: 0, SiteStatus.WARNING: 1, SiteStatus.OK: 2}


class StatusReason(StrEnum):
    CRITICAL_OPEN = "critical_open"
    MAJOR_OPEN = "major_open"
    MINOR_OPEN = "minor_open"
    WARNING_OPEN = "warning_open"
    DEVICES_OFFLINE = "devices_offline"
    DEVICES_FAULT = "devices_fault"
    NOTHING_OPEN = "nothing_open"
    EDGE_GATEWAY_OFFLINE = "edge_gateway_offline"  # nothing protects the site
    EDGE_UPLINK_DOWN = "edge_uplink_down"  # the bureau cannot see the site


def site_status(
    open_by_severity: Mapping[str, int],
    devices_by_status: Mapping[str, int],
    edge: EdgeState | None = None,
) -> tuple[SiteStatus, StatusReason]:
    """The site's colour, with the reason that decided it (the most serious one).

    An edge site whose gateway is offline is red: its gas shut-off and phones are down,
    and the bureau does not act for it. An edge site whose uplink is down is at least amber:
    the bureau sees nothing of it, so its figures are stale."""
    if open_by_severity.get("critical", 0) > 0:
        return SiteStatus.ALARM, StatusReason.CRITICAL_OPEN
    if edge is EdgeState.GATEWAY_OFFLINE:
        return SiteStatus.ALARM, StatusReason.EDGE_GATEWAY_OFFLINE
    if open_by_severity.get("major", 0) > 0:
        return SiteStatus.ALARM, StatusReason.MAJOR_OPEN
    if edge is EdgeState.UPLINK_DOWN:
        return SiteStatus.WARNING, StatusReason.EDGE_UPLINK_DOWN
    for severity, reason in (
        ("minor", StatusReason.MINOR_OPEN),
        ("warning", StatusReason.WARNING_OPEN),
    ):
        if open_by_severity.get(severity, 0) > 0:
            return SiteStatus.WARNING, reason
    if devices_by_status.get("offline", 0) > 0:
        return SiteStatus.WARNING, StatusReason.DEVICES_OFFLINE
    if devices_by_status.get("fault", 0) > 0:
        return SiteStatus.WARNING, StatusReason.DEVICES_FAULT
    return SiteStatus.OK, StatusReason.NOTHING_OPEN


# --------------------------------------------------------------------- site summary
@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    device: str
    state: str  # online | offline | fault | unknown (as in the device JSON)
    last_seen: float | None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class SiteRow:
    id: str
    name: str
    kind: SiteKind
    served_by: str
    devices: dict[str, int]
    open_alarms: dict[str, int]
    unacknowledged: int
    oldest_unacknowledged: Alarm | None
    last_contact: float | None
    availability: Availability
    status: SiteStatus
    status_reason: StatusReason
    locations: dict[str, str | None] = field(default_factory=dict)
    edge: EdgeLink | None = None  # sites served by an edge gateway

    @property
    def online_rate(self) -> float | None:
        return self.availability.rate


def summarize_site(
    site: SiteConfig,
    devices: Sequence[DeviceSnapshot],
    open_alarms: Iterable[Alarm],
    avail: Availability,
    edge: EdgeLink | None = None,
) -> SiteRow:
    """One site's figures from its devices' states and its open (not closed) alarms."""
    by_status = dict.fromkeys(DEVICE_STATES, 0)
    for d in devices:
        by_status[d.state] = by_status.get(d.state, 0) + 1
    by_severity = dict.fromkeys(SEVERITIES, 0)
    unacked: list[Alarm] = []
    for a in open_alarms:
        if a.state is AlarmState.CLOSED:
            continue
        by_severity[a.severity.value] += 1
        if not a.acked:
            unacked.append(a)
    oldest = min(unacked, key=lambda a: (a.raised_at, a.id)) if unacked else None
    seen = [d.last_seen for d in devices if d.last_seen is not None]
    status, reason = site_status(by_severity, by_status, edge.state if edge else None)
    return SiteRow(
        id=site.id,
        name=site.name,
        kind=site.kind,
        served_by=site.served_by,
        devices=by_status,
        open_alarms=by_severity,
        unacknowledged=len(unacked),
        oldest_unacknowledged=oldest,
        last_contact=max(seen) if seen else None,
        availability=avail,
        status=status,
        status_reason=reason,
        locations={d.device: d.location for d in devices},
        edge=replace(edge) if edge else None,  # a copy: the figures of one moment
    )


# -------------------------------------------------------------------------- sorting
class SortKey(StrEnum):
    SEVERITY = "severity"  # sites with critical alarms first, then major, ..., then ok
    NAME = "name"
    KIND = "kind"
    ONLINE_RATE = "online_rate"  # lowest first; sites with no known device last
    LAST_CONTACT = "last_contact"  # longest silent first; never heard from first of all


_KIND_ORDER = {k: i for i, k in enumerate(SiteKind)}


def _severity_key(r: SiteRow) -> tuple[Any, ...]:
    o, d = r.open_alarms, r.devices
    return (
        r.status.rank,
        -o["critical"],
        -o["major"],
        -o["minor"],
        -o["warning"],
        -(d["offline"] + d["fault"]),
        -r.unacknowledged,
        r.name,
        r.id,
    )


def sort_sites(rows: Iterable[SiteRow], key: SortKey, reverse: bool = False) -> list[SiteRow]:
    """Sites in the order a key asks for; `reverse` turns it round. A site without an
    online rate stays last either way (it has no figure to compare)."""
    if key is SortKey.SEVERITY:
        return sorted(rows, key=_severity_key, reverse=reverse)
    if key is SortKey.NAME:
        return sorted(rows, key=lambda r: (r.name, r.id), reverse=reverse)
    if key is SortKey.KIND:
        return sorted(rows, key=lambda r: (_KIND_ORDER[r.kind], r.name, r.id), reverse=reverse)
    if key is SortKey.ONLINE_RATE:
        listed = list(rows)
        rated = [r for r in listed if r.online_rate is not None]
        unrated = sorted((r for r in listed if r.online_rate is None), key=lambda r: (r.name, r.id))
        rated.sort(key=lambda r: (r.online_rate, r.name, r.id), reverse=reverse)
        return rated + unrated
    # last contact: never heard (None) counts as the longest silence
    return sorted(
        rows,
        key=lambda r: (r.last_contact is not None, r.last_contact or 0.0, r.name, r.id),
        reverse=reverse,
    )


# ----------------------------------------------------------------------------- JSON
def oldest_json(
    a: Alarm | None, location: str | None, now: float, clock: Clockface
) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "id": a.id,
        "site": a.site,
        "type": a.type.value,
        "severity": a.severity.value,
        "raised_at": clock.iso(a.raised_at),
        "age_s": max(0, math.floor(now - a.raised_at)),
        "device": a.device,
        "location": location,
    }


def row_json(r: SiteRow, now: float, clock: Clockface) -> dict[str, Any]:
    oldest = r.oldest_unacknowledged
    return {
        "id": r.id,
        "name": r.name,
        "kind": r.kind.value,
        "kind_label": KIND_LABELS[r.kind],
        "served_by": r.served_by,
        "status": r.status.value,
        "status_reason": r.status_reason.value,
        "devices": dict(r.devices),
        "device_total": sum(r.devices.values()),
        "open_alarms": dict(r.open_alarms),
        "open_total": sum(r.open_alarms.values()),
        "unacknowledged": r.unacknowledged,
        "oldest_unacknowledged": oldest_json(
            oldest, r.locations.get(oldest.device) if oldest else None, now, clock
        ),
        "last_contact": clock.iso(r.last_contact),
        "online_rate_24h": r.online_rate,
        "edge": edge_json(r.edge, clock),
    }


def totals_json(rows: Sequence[SiteRow], now: float, clock: Clockface) -> dict[str, Any]:
    """County figures over the given sites (all the caller may read, after any filter)."""
    devices = dict.fromkeys(DEVICE_STATES, 0)
    alarms = dict.fromkeys(SEVERITIES, 0)
    by_status = {s.value: 0 for s in SiteStatus}
    avail = Availability()
    for r in rows:
        by_status[r.status.value] += 1
        for k, n in r.devices.items():
            devices[k] = devices.get(k, 0) + n
        for k, n in r.open_alarms.items():
            alarms[k] += n
        avail = avail + r.availability
    with_oldest = [r for r in rows if r.oldest_unacknowledged is not None]
    oldest_row = min(
        with_oldest,
        key=lambda r: (r.oldest_unacknowledged.raised_at, r.id),  # type: ignore[union-attr]
        default=None,
    )
    oldest = None
    if oldest_row is not None and oldest_row.oldest_unacknowledged is not None:
        a = oldest_row.oldest_unacknowledged
        oldest = oldest_json(a, oldest_row.locations.get(a.device), now, clock)
        assert oldest is not None
        oldest["site_name"] = oldest_row.name
    contacts = [r.last_contact for r in rows if r.last_contact is not None]
    return {
        "sites": len(rows),
        "by_status": by_status,
        "devices": devices,
        "device_total": sum(devices.values()),
        "open_alarms": alarms,
        "open_total": sum(alarms.values()),
        "unacknowledged": sum(r.unacknowledged for r in rows),
        "oldest_unacknowledged": oldest,
        "last_contact": clock.iso(max(contacts) if contacts else None),
        "online_rate_24h": avail.rate,
    }
