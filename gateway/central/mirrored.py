"""`MirroredAlarm`: an alarm as an edge gateway publishes it on `{prefix}/{site}/alarms`
(`gateway.alarms.wire.event_json`), parsed strictly at the boundary. Untrusted input: anyone
with a broker account can publish there, so every field is typed and bounded before the
mirror (`gateway.alarms.mirror`) sees it."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from gateway.alarms.book import Action, AlarmState, Disposition
from gateway.alarms.event import AlarmEvent, AlarmSnapshot
from gateway.central.edges import CENTRAL_ALARM_TYPES
from gateway.config.schema import Ident
from rules.model import AlarmType, Severity

Finite = Annotated[float, Field(allow_inf_nan=False)]
Actor = Annotated[str, Field(max_length=200)]
Text = Annotated[str, Field(max_length=2000)]


class MirroredAlarm(BaseModel):
    """Another gateway's snapshot of one alarm (central mode). Validate with
    `model_validate_json`: strict types, ISO 8601 times with their offset."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    site: Ident
    device: Ident
    type: AlarmType
    severity: Severity
    state: AlarmState
    change: Action = Action.UPDATED
    level: str | None = Field(None, max_length=40)
    latched: bool = False
    acked: bool = False
    value: Finite | None = None
    peak: Finite | None = None
    count: int = Field(1, ge=1)
    reason: str | None = Field(None, max_length=500)
    raised_at: AwareDatetime
    acked_at: AwareDatetime | None = None
    acked_by: Actor | None = None
    cleared_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    closed_by: Actor | None = None
    disposition: Disposition | None = None
    note: Text | None = None
    updated_at: AwareDatetime | None = None

    @field_validator("type")
    @classmethod
    def _raised_at_the_edge(cls, v: AlarmType) -> AlarmType:
        if v.value in CENTRAL_ALARM_TYPES:
            raise ValueError(f"{v.value} is raised here, not at the edge")
        return v

    def event(self, now: float) -> AlarmEvent:
        """The edge's change, times in epoch seconds (`now` where the edge gave no
        `updated_at`)."""
        alarm = AlarmSnapshot(
            id=self.id,
            site=self.site,
            device=self.device,
            type=self.type,
            severity=self.severity,
            state=self.state,
            raised_at=self.raised_at.timestamp(),
            level=self.level,
            latched=self.latched,
            acked=self.acked,
            value=self.value,
            peak=self.peak,
            count=self.count,
            reason=self.reason,
            acked_at=_epoch(self.acked_at),
            acked_by=self.acked_by,
            cleared_at=_epoch(self.cleared_at),
            closed_at=_epoch(self.closed_at),
            closed_by=self.closed_by,
            disposition=self.disposition,
            note=self.note,
            updated_at=self.updated_at.timestamp() if self.updated_at is not None else now,
        )
        return AlarmEvent(self.change, alarm)


def _epoch(t: AwareDatetime | None) -> float | None:
    return t.timestamp() if t is not None else None
