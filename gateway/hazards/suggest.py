"""Hazards the gateway suggests from its own alarms (issue 12): pure, no clock (callers pass
`now`), no I/O. A suggestion is only that: a person accepts it by entering the hazard
(`POST /api/hazards` with its `source` and `alarm_id`), or ignores it.

The rules:
- a `valve_failure` open, or closed within the window and not as false alarm, test or
  maintenance: major, the gas may not be shut off;
- a `device_offline` still active for more than `offline_after`;
- `false_alarms` or more alarms of one device closed as `false_alarm` within the window;
- an electrical alarm (residual current, overtemperature, overcurrent) closed as `real`.

At most one suggestion per (site, device, source), from its latest alarm. A hazard linked to
an alarm covers that alarm and every earlier one of the same device and source, so accepting
a suggestion makes it go away, and only a later alarm brings it back.

Alarms are read through `AlarmLike`, a protocol the book's `Alarm` satisfies: the ledger
links an alarm by id and does not import the alarm path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.config.schema import HazardsSection
from gateway.hazards.model import Hazard, HazardLevel, HazardSource
from rules.model import AlarmType

ELECTRICAL: frozenset[AlarmType] = frozenset(
    {AlarmType.RESIDUAL_CURRENT, AlarmType.OVERTEMPERATURE, AlarmType.OVERCURRENT}
)
# A valve failure closed so was not a failure of the valve in service.
_NOT_A_FAILURE: frozenset[str] = frozenset({"false_alarm", "test", "maintenance"})

_ELECTRICAL_LABELS: Mapping[AlarmType, str] = {
    AlarmType.RESIDUAL_CURRENT: "剩余电流",
    AlarmType.OVERTEMPERATURE: "线缆温度过高",
    AlarmType.OVERCURRENT: "过流",
}


class AlarmLike(Protocol):
    """What a suggestion reads of an alarm (read-only, so the book's `Alarm` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def type(self) -> AlarmType: ...
    @property
    def state(self) -> str: ...  # active, cleared, closed
    @property
    def raised_at(self) -> float: ...
    @property
    def disposition(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Suggestion:
    site: str
    device: str
    location: str | None  # the device's place in the site config; None: not configured
    source: HazardSource
    alarm_id: str  # the latest alarm behind it: what the accepted hazard links
    raised_at: float  # that alarm's
    reason: str  # why it is suggested, in words for the duty officer
    level: HazardLevel
    description: str  # a proposal for the hazard's description


def _source(a: AlarmLike, now: float, settings: HazardsSection) -> HazardSource | None:
    """The rule one alarm feeds, if any (false alarms are counted apart)."""
    closed = a.state == "closed"
    recent = now - a.raised_at <= settings.false_alarm_window
    if a.type is AlarmType.VALVE_FAILURE:
        if not closed or (recent and a.disposition not in _NOT_A_FAILURE):
            return HazardSource.VALVE_FAILURE
    elif a.type is AlarmType.DEVICE_OFFLINE:
        # Still offline: a device that came back is no longer a hazard of its own.
        if a.state == "active" and now - a.raised_at > settings.offline_after:
            return HazardSource.DEVICE_OFFLINE
    elif a.type in ELECTRICAL and closed and recent and a.disposition == "real":
        return HazardSource.ELECTRICAL_ALARM
    return None


def _uncovered(alarms: list[AlarmLike], linked: frozenset[str]) -> list[AlarmLike]:
    """The alarms after the latest one a hazard links (oldest first in, oldest first out)."""
    last = max((i for i, a in enumerate(alarms) if a.id in linked), default=-1)
    return alarms[last + 1 :]


def suggestions(
    open_alarms: Iterable[AlarmLike],
    closed_alarms: Iterable[AlarmLike],
    existing_hazards: Iterable[Hazard],
    now: float,
    settings: HazardsSection,
    locations: Mapping[tuple[str, str], str] | None = None,
) -> list[Suggestion]:
    """The suggestions at `now`, newest alarm first. `closed_alarms` should reach back
    `settings.false_alarm_window`; older ones are ignored. `locations`: (site, device) →
    the device's location."""
    linked = frozenset(h.alarm_id for h in existing_hazards if h.alarm_id is not None)
    seen: set[str] = set()
    groups: dict[tuple[str, str, HazardSource], list[AlarmLike]] = {}
    for a in [*open_alarms, *closed_alarms]:
        if a.id in seen:  # an alarm closed while both lists were read
            continue
        seen.add(a.id)
        source = _source(a, now, settings)
        if source is None and (
            a.state == "closed"
            and a.disposition == "false_alarm"
            and now - a.raised_at <= settings.false_alarm_window
        ):
            source = HazardSource.FALSE_ALARMS
        if source is not None:
            groups.setdefault((a.site, a.device, source), []).append(a)
    found: list[Suggestion] = []
    for (site, device, source), alarms in groups.items():
        alarms.sort(key=lambda a: (a.raised_at, a.id))
        left = _uncovered(alarms, linked)
        if not left or (source is HazardSource.FALSE_ALARMS and len(left) < settings.false_alarms):
            continue
        latest = left[-1]
        reason, level, description = _words(source, latest, len(left), now, settings)
        location = (locations or {}).get((site, device))
        found.append(
            Suggestion(
                site, device, location, source, latest.id, latest.raised_at, reason, level,
                description,
            )
        )  # fmt: skip
    found.sort(key=lambda s: (-s.raised_at, s.site, s.device, s.source.value))
    return found


def _words(
    source: HazardSource, a: AlarmLike, count: int, now: float, settings: HazardsSection
) -> tuple[str, HazardLevel, str]:
    """Reason, proposed level and proposed description of one suggestion."""
    if source is HazardSource.VALVE_FAILURE:
        state = "未关闭" if a.state != "closed" else "已关闭"
        return (
            f"切断阀动作失败告警（{state}）",
            HazardLevel.MAJOR,
            f"设备 {a.device} 燃气切断阀动作失败，泄漏时无法切断燃气",
        )
    if source is HazardSource.DEVICE_OFFLINE:
        hours = int((now - a.raised_at) // 3600)
        return (
            f"设备离线已超过 {hours} 小时（阈值 {settings.offline_after / 3600:g} 小时）",
            HazardLevel.GENERAL,
            f"设备 {a.device} 长时间离线，该处处于无监测状态",
        )
    if source is HazardSource.FALSE_ALARMS:
        days = settings.false_alarm_window / 86400
        return (
            f"{days:g} 天内 {count} 次告警被确认为误报",
            HazardLevel.GENERAL,
            f"设备 {a.device} 频繁误报，需检修或更换，以免真实告警被忽视",
        )
    label = _ELECTRICAL_LABELS.get(a.type, a.type.value)
    return (
        f"{label}告警经确认属实",
        HazardLevel.GENERAL,
        f"设备 {a.device} 所在电气线路{label}，需排查线路与用电设备",
    )
