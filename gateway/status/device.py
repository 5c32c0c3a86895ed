"""A device's status as the contract says it (DESIGN section 8: online, offline, fault,
unknown): the one mapping behind the API's device view, the bureau overview and the daily
report's "offline now", whether it is told by the running rule engine or, with no engine
(the CLI's report), by the stored alarms alone."""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import StrEnum

from gateway.alarms.rows import AlarmRow
from gateway.status.availability import intervals_by_device, present_at
from rules.engine import DeviceStatus
from rules.model import AlarmType


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    FAULT = "fault"
    UNKNOWN = "unknown"  # not heard from since start-up, not yet overdue


def device_state(status: DeviceStatus) -> DeviceState:
    """What the engine believes, as the contract's status. Offline wins over fault: a
    silent device's last fault flag is stale."""
    if not status.online:
        return DeviceState.OFFLINE
    if status.last_seen is None:
        return DeviceState.UNKNOWN
    if status.fault:
        return DeviceState.FAULT
    return DeviceState.ONLINE


def state_from_alarms(alarms: Iterable[AlarmRow], now: float) -> DeviceState:
    """One device's status told by its stored alarms alone (no running engine): the engine
    raises device_offline for a device silent past its stale window, counted from
    start-up, so no offline alarm means it was heard."""
    mine = list(alarms)
    for alarm_type, state in (
        (AlarmType.DEVICE_OFFLINE, DeviceState.OFFLINE),
        (AlarmType.DEVICE_FAULT, DeviceState.FAULT),
    ):
        spans = intervals_by_device(mine, alarm_type.value, math.inf)
        if any(present_at(s, now) for s in spans.values()):
            return state
    return DeviceState.ONLINE
