"""JSON shapes of the external contract (DESIGN section 8): times in ISO 8601 with offset."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.alarms.book import Alarm, TimelineEntry
from gateway.alarms.store import CommandRecord
from gateway.config.inventory import InstalledDevice
from gateway.status.device import device_state
from rules.engine import DeviceStatus


class Clockface:
    """Formats epoch seconds in the gateway's configured time zone."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)

    def parse(self, iso: str | None) -> float | None:
        """ISO 8601 (with offset; naive is taken in this zone) -> epoch seconds."""
        if not iso:
            return None
        try:
            dt = datetime.fromisoformat(iso)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.zone)
        return dt.timestamp()

    def iso(self, ts: float | None) -> str | None:
        if ts is None:
            return None
        return datetime.fromtimestamp(ts, self.zone).isoformat(timespec="milliseconds")


def alarm_json(
    a: Alarm,
    clock: Clockface,
    *,
    timeline: bool = True,
    location: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "site": a.site,
        "device": a.device,
        "location": location,
        "type": a.type.value,
        "severity": a.severity.value,
        "level": a.level,
        "state": a.state.value,
        "acked": a.acked,
        "latched": a.latched,
        "value": a.value,
        "peak": a.peak,
        "count": a.count,
        "reason": a.reason,
        "raised_at": clock.iso(a.raised_at),
        "acked_at": clock.iso(a.acked_at),
        "acked_by": a.acked_by,
        "cleared_at": clock.iso(a.cleared_at),
        "closed_at": clock.iso(a.closed_at),
        "closed_by": a.closed_by,
        "disposition": a.disposition.value if a.disposition else None,
        "note": a.note,
        "updated_at": clock.iso(a.updated_at),
    }
    if timeline:
        out["timeline"] = [entry_json(e, clock) for e in a.timeline]
    return out


def command_json(c: CommandRecord, clock: Clockface) -> dict[str, Any]:
    """A command and (once known) its result, as published on `{prefix}/{site}/commands`."""
    return {
        "id": c.id,
        "site": c.site,
        "device": c.device,
        "cmd": c.cmd,
        "requested_by": c.requested_by,
        "alarm_id": c.alarm_id,
        "reason": c.reason,
        "sent_at": clock.iso(c.sent_at),
        "result": c.result,
        "result_at": clock.iso(c.result_at),
        "detail": c.detail,
    }


class CommandMessage(BaseModel):
    """Another gateway's command record (central mode: the edge's valve and trip actions)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=100)
    site: str = Field(min_length=1)
    device: str = Field(min_length=1)
    cmd: str = Field(min_length=1, max_length=40)
    requested_by: str = Field(max_length=200)
    alarm_id: str | None = None
    reason: str | None = None
    sent_at: AwareDatetime
    result: Literal["ok", "failed"] | None = None
    result_at: AwareDatetime | None = None
    detail: str | None = Field(None, max_length=2000)

    def record(self) -> CommandRecord:
        return CommandRecord(
            self.id,
            self.site,
            self.device,
            self.cmd,
            self.requested_by,
            self.alarm_id,
            self.reason,
            self.sent_at.timestamp(),
            self.result,
            self.result_at.timestamp() if self.result_at else None,
            self.detail,
        )


def entry_json(e: TimelineEntry, clock: Clockface) -> dict[str, Any]:
    return {
        "at": clock.iso(e.at),
        "action": e.action.value,
        "actor": e.actor,
        "reason": e.reason,
        "value": e.value,
        "severity": e.severity.value if e.severity else None,
        "note": e.note,
        "detail": e.detail,
    }


def device_json(d: InstalledDevice, status: DeviceStatus, clock: Clockface) -> dict[str, Any]:
    return {
        "id": d.ref.device,
        "site": d.ref.site,
        "type": d.type.value,
        "location": d.config.location,
        "name": d.config.name,
        "transport": d.config.transport,
        "shutoff_valve": d.config.shutoff_valve,
        "status": device_state(status).value,
        "last_seen": clock.iso(status.last_seen),
        "values": {name: value for name, (value, _) in sorted(status.values.items())},
        "values_at": {name: clock.iso(at) for name, (_, at) in sorted(status.values.items())},
    }
