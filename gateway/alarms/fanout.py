"""`AlarmFanout`: tells the outside world of alarm changes, once they are on disk.

Called by the store writer after each commit, so nothing outside the gateway learns of a
transition the store lacks; while commits fail (a full disk), at once instead, since people
must hear of an alarm whether or not the disk holds it (`gateway.alarms.store`). A site
this gateway serves: published on `{prefix}/{site}/alarms` (QoS 1, priority lane), written
to the time series, pushed to the live feed and handed to the notifications. A site its
edge serves (central mode): shown and handed to the notifications (which keep only the
bureau's steps), never re-published, since that would echo over the bridge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from drivers import codec
from drivers.mqtt import PRIORITY_ALARM, MqttLink, Publication
from gateway.alarms.event import AlarmEvent
from gateway.alarms.wire import event_json
from gateway.config.clockface import Clockface
from gateway.live.hub import LiveHub
from rules.model import AlarmType, DeviceRef

STATUS_ALARMS = frozenset({AlarmType.DEVICE_OFFLINE, AlarmType.DEVICE_FAULT})


class AlarmListener(Protocol):
    def alarm_changed(self, event: AlarmEvent) -> None: ...


class AlarmSeries(Protocol):
    """The time-series side: alarm points, and a status point when a status alarm moves."""

    def alarm(self, event: AlarmEvent) -> None: ...
    def status_point(self, ref: DeviceRef, at: float) -> None: ...


class AlarmFanout:
    def __init__(
        self,
        *,
        link: MqttLink,
        topic_prefix: str,
        live: LiveHub,
        clockface: Clockface,
        decides: Callable[[str], bool],
        listeners: Sequence[AlarmListener] = (),
        series: AlarmSeries | None = None,
    ) -> None:
        self._link = link
        self._prefix = topic_prefix
        self._live = live
        self._clockface = clockface
        self._decides = decides
        self._listeners = tuple(listeners)
        self._series = series

    def on_committed(self, events: Sequence[AlarmEvent]) -> None:
        for event in events:
            a = event.alarm
            shown = event_json(event, self._clockface)
            if self._decides(a.site):
                self._link.publish(
                    Publication(f"{self._prefix}/{a.site}/alarms", codec.encode(shown), qos=1),
                    PRIORITY_ALARM,
                )
                if self._series is not None:
                    self._series.alarm(event)
                    if a.type in STATUS_ALARMS:
                        self._series.status_point(DeviceRef(a.site, a.device), a.updated_at)
            self._live.alarm_changed(a.site, {"kind": "alarm", "alarm": shown})
            for listener in self._listeners:
                listener.alarm_changed(event)
