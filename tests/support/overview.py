"""Two sites and a day of device history, for the bureau overview's API and page tests."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from gateway.alarms.book import (
    Action,
    Alarm,
    AlarmState,
    AlarmWrite,
    Disposition,
    TimelineEntry,
)
from gateway.alarms.store import AlarmStore
from gateway.duty.model import CheckAnswer, CheckResult, DailyCheck
from gateway.hazards.model import Hazard, HazardLevel, HazardSource
from rules.model import AlarmType, Severity
from tests.conftest import site_config

H = 3600.0

ANNING_DEVICES = [
    {"id": "gas-1", "type": "gas_detector", "location": "食堂"},
    {"id": "smoke-1", "type": "smoke_detector", "location": "二楼走廊"},
    {"id": "btn-1", "type": "alarm_button", "location": "值班室"},
]


def two_sites(data_dir: Path, broker_port: int, **kwargs: Any) -> dict[str, Any]:
    """The test site (xingfu, elderly care) and a child-welfare home (anning)."""
    data = site_config(data_dir, broker_port, **kwargs)
    data["sites"].append(
        {
            "id": "anning",
            "name": "安宁儿童福利院",
            "kind": "child_welfare",
            "address": "启东市安宁路1号",
            "contacts": [
                {"name": "赵院长", "role": "legal_representative", "phone": "+8613800000011"}
            ],
            "devices": ANNING_DEVICES,
        }
    )
    return data


def _closed_offline(
    alarm_id: str, site: str, device: str, raised: float, cleared: float
) -> AlarmWrite:
    closed = cleared + 600
    alarm = Alarm(
        alarm_id, site, device, AlarmType.DEVICE_OFFLINE, Severity.MINOR, AlarmState.CLOSED,
        raised, acked=True, acked_at=cleared + 60, acked_by="王值班", cleared_at=cleared,
        closed_at=closed, closed_by="王值班", disposition=Disposition.REAL, note="已更换电池",
        reason="silent", updated_at=closed,
    )  # fmt: skip
    alarm.timeline = [
        TimelineEntry(raised, Action.RAISED, "system", "silent", None, Severity.MINOR),
        TimelineEntry(cleared, Action.CLEARED, "system", "back_online", None, Severity.MINOR),
        TimelineEntry(cleared + 60, Action.ACKED, "王值班"),
        TimelineEntry(closed, Action.CLOSED, "王值班", note="已更换电池"),
    ]
    return AlarmWrite(alarm, tuple(alarm.timeline), 0, Action.CLOSED)


async def seed_history(data_dir: Path, t0: float) -> None:
    """Offline history in the store before the gateway starts: gas-1 offline from 30 h to
    20 h ago (4 h of it inside the 24 h window), btn-1 from 2 h to 1 h ago (btn-1 stays
    unknown: its history does not count)."""
    store = AlarmStore(data_dir / "alarms.sqlite3")
    await store.open()
    writer = asyncio.create_task(store.run_writer())
    try:
        for write in (
            _closed_offline("seed-gas-1", "anning", "gas-1", t0 - 30 * H, t0 - 20 * H),
            _closed_offline("seed-btn-1", "anning", "btn-1", t0 - 2 * H, t0 - 1 * H),
        ):
            done = store.submit_alarm(write, {}, wait=True)
            assert done is not None
            await done
    finally:
        store.stop()
        await writer
        await store.close()


# ----------------------------------------------------------------- the closed loop
def hazard(site: str, found_at: float, deadline: float | None, level: str = "general") -> Hazard:
    """A hazard to enter with `HazardStore.add` (its id is the store's)."""
    return Hazard(
        id=0, site=site, location="厨房", description="燃气软管老化", level=HazardLevel(level),
        source=HazardSource.INSPECTION, found_at=found_at, found_by="局检查组",
        responsible="李主任", measure="更换软管", deadline=deadline,
    )  # fmt: skip


def daily_check(site: str, day: date, at: float, items: list[str]) -> DailyCheck:
    answers = tuple(CheckAnswer(i, CheckResult.OK) for i in items)
    return DailyCheck(site, day, answers, at, "王值班 (wang)")
