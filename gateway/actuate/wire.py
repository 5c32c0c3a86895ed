"""A command's record: what was sent, by whom, for which alarm, and its result. The record is
stored (`gateway.alarms.store`), published on `{prefix}/{site}/commands` for the bureau, and
read back from an edge gateway's topic in central mode (`CommandMessage`, untrusted input)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.config.clockface import Clockface


@dataclass(frozen=True, slots=True)
class CommandRecord:
    id: str
    site: str
    device: str
    cmd: str
    requested_by: str
    alarm_id: str | None
    reason: str | None
    sent_at: float
    result: str | None = None
    result_at: float | None = None
    detail: str | None = None


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
